import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Provider } from 'ethers';
import { describe, expect, it } from 'vitest';

import { EpochWatcher, type WatchEvent } from './watch.js';

describe('EpochWatcher.run', () => {
  it('reports a failing pass, keeps polling, and leaves no listener on the signal per pass', async () => {
    const events: WatchEvent[] = [];
    const watcher = new EpochWatcher({
      distributor: `0x${'11'.repeat(20)}`,
      // A provider that cannot call: every pass fails, is reported and retried.
      provider: {} as Provider,
      fetchFile: () => Promise.resolve(null),
      onEvent: (e) => events.push(e),
    });
    const stop = new AbortController();
    const running = watcher.run(stop.signal, 5);
    await sleep(120);
    expect(events.length).toBeGreaterThan(3);
    expect(events.every((e) => e.kind === 'error')).toBe(true);
    expect(getEventListeners(stop.signal, 'abort').length).toBeLessThanOrEqual(1);
    stop.abort();
    await running;
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });
});
