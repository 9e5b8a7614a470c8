import { useCallback, useEffect, useEffectEvent, useRef, useState } from 'react';
import { confirmSession } from './api';

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
  // `deps` changed since the last render: show loading at once and count a new version, which the
  // effect below loads (React's pattern for state that follows a prop, set during render).
  const [seen, setSeen] = useState({ deps, version: 0 });
  if (!sameDeps(seen.deps, deps)) {
    setSeen({ deps, version: seen.version + 1 });
    setState({ status: 'loading' });
  }
  const { version } = seen;
  const fetchLatest = useEffectEvent(fetcher);

  useEffect(() => {
    let cancelled = false;
    fetchLatest().then(
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
  }, [version, tick]);

  useEffect(() => {
    if (!pollMs) return;
    const timer = window.setInterval(() => setTick((t) => t + 1), pollMs);
    return () => window.clearInterval(timer);
  }, [pollMs]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** Whether two dependency lists are equal the way React compares an effect's dependencies. */
function sameDeps(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((value, i) => Object.is(value, b[i]));
}

/** `ended`: the server closed the stream for good (the job finished, or the session ended). */
export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'ended';

/** Subscribes to a server-sent event stream; the browser reconnects by itself after a drop. */
export function useEventStream(
  url: string | null,
  handlers: Record<string, (data: unknown) => void>,
): StreamStatus {
  const [status, setStatus] = useState<StreamStatus>('connecting');
  // a new url connects afresh (set during render, React's pattern for state that follows a prop)
  const [seenUrl, setSeenUrl] = useState(url);
  if (seenUrl !== url) {
    setSeenUrl(url);
    setStatus('connecting');
  }
  const names = Object.keys(handlers).join('\n');
  const handle = useEffectEvent((name: string, data: unknown): void => handlers[name]?.(data));

  useEffect(() => {
    if (!url) return;
    const source = new EventSource(url, { withCredentials: true });
    source.onopen = () => setStatus('live');
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) {
        setStatus('reconnecting');
        return;
      }
      // Refused for good (204: nothing more will come; 401: signed out or the key revoked): no
      // reconnecting; if the session is gone, the sign-in page shows.
      setStatus('ended');
      void confirmSession();
    };
    const listeners = names.split('\n').map((name) => {
      const listener = (event: MessageEvent<string>): void => {
        setStatus('live');
        try {
          handle(name, JSON.parse(event.data));
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
  }, [url, names]);

  return status;
}

/** How long after a navigation the new page's heading may take to appear (it may wait for data). */
const HEADING_WAIT_MS = 3_000;

/**
 * Moves the keyboard focus to the new page's heading (`main h1`) after each route change (not on the
 * first render), so a screen reader announces the new page and Tab continues from it. A page that
 * shows its heading after its data loads is waited for; a focus the user moved meanwhile is kept.
 */
export function useFocusHeadingOnNavigation(routeKey: string): void {
  const shown = useRef(routeKey);
  useEffect(() => {
    if (shown.current === routeKey) return;
    shown.current = routeKey;
    const main = document.getElementById('main');
    if (!main) return;
    const startedOn = document.activeElement;
    const tryFocus = (): boolean => {
      const active = document.activeElement;
      // the user went somewhere else in the meantime (typing in the new page, say): leave it there
      if (active !== startedOn && active !== document.body && main.contains(active)) return true;
      const heading = main.querySelector('h1');
      if (!heading) return false;
      if (!heading.hasAttribute('tabindex')) heading.setAttribute('tabindex', '-1');
      heading.focus();
      return true;
    };
    if (tryFocus()) return;
    const observer = new MutationObserver(() => {
      if (tryFocus()) stop();
    });
    const timer = window.setTimeout(() => {
      stop();
      main.focus();
    }, HEADING_WAIT_MS);
    const stop = (): void => {
      observer.disconnect();
      window.clearTimeout(timer);
    };
    observer.observe(main, { childList: true, subtree: true });
    return stop;
  }, [routeKey]);
}
