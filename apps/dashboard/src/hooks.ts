import { useCallback, useEffect, useRef, useState } from 'react';

export type Load<T> =
  | { status: 'loading'; data?: undefined; error?: undefined }
  | { status: 'ok'; data: T; error?: undefined }
  | { status: 'error'; data?: T; error: Error };

/**
 * Loads with `fetcher` now, whenever `deps` change, and every `pollMs` if set (keeping the last data
 * on screen while it refreshes). `reload()` loads again at once.
 */
export function useLoad<T>(
  fetcher: () => Promise<T>,
  deps: readonly unknown[],
  pollMs?: number,
): Load<T> & { reload: () => void } {
  const [state, setState] = useState<Load<T>>({ status: 'loading' });
  const [tick, setTick] = useState(0);
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;

  useEffect(() => {
    setState({ status: 'loading' });
  }, deps);

  useEffect(() => {
    let cancelled = false;
    fetcherRef.current().then(
      (data) => {
        if (!cancelled) setState({ status: 'ok', data });
      },
      (error: unknown) => {
        if (!cancelled)
          setState((prev) => ({
            status: 'error',
            data: prev.data,
            error: error instanceof Error ? error : new Error(String(error)),
          }));
      },
    );
    return () => {
      cancelled = true;
    };
  }, [...deps, tick]);

  useEffect(() => {
    if (!pollMs) return;
    const timer = window.setInterval(() => setTick((t) => t + 1), pollMs);
    return () => window.clearInterval(timer);
  }, [pollMs]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export type StreamStatus = 'connecting' | 'live' | 'reconnecting';

/** Subscribes to a server-sent event stream; the browser reconnects by itself after a drop. */
export function useEventStream(
  url: string | null,
  handlers: Record<string, (data: unknown) => void>,
): StreamStatus {
  const [status, setStatus] = useState<StreamStatus>('connecting');
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;

  useEffect(() => {
    if (!url) return;
    setStatus('connecting');
    const source = new EventSource(url, { withCredentials: true });
    source.onopen = () => setStatus('live');
    source.onerror = () => setStatus('reconnecting');
    const names = Object.keys(handlersRef.current);
    const listeners = names.map((name) => {
      const listener = (event: MessageEvent<string>): void => {
        setStatus('live');
        try {
          handlersRef.current[name]?.(JSON.parse(event.data));
        } catch {
          // a malformed event is skipped
        }
      };
      source.addEventListener(name, listener);
      return [name, listener] as const;
    });
    return () => {
      for (const [name, listener] of listeners) source.removeEventListener(name, listener);
      source.close();
    };
  }, [url]);

  return status;
}
