import { requestWebgpuAdapter, type WebgpuAdapterInfo } from '@gpumesh/compute';

/**
 * Whether this machine has a WebGPU adapter for the tests of `what`. In CI it must (Mesa's llvmpipe
 * through Dawn's OpenGL ES backend: .ci/run installs libegl-mesa0 libgl1-mesa-dri libgles2), so there
 * `open()` throws; on a developer's machine without one the tests skip, saying why.
 */
export class WebgpuGate {
  private reason: string | undefined;

  constructor(private readonly what: string) {}

  /** Requests the adapter (in `beforeAll`): its info, or undefined where there is none (outside CI). */
  async open(): Promise<WebgpuAdapterInfo | undefined> {
    try {
      return (await requestWebgpuAdapter()).info;
    } catch (err) {
      this.reason = err instanceof Error ? err.message : String(err);
      if (process.env.CI)
        throw new Error(
          `CI must have a WebGPU adapter (Mesa: libegl-mesa0 libgl1-mesa-dri libgles2): ${this.reason}`,
        );
      console.warn(`skipping the ${this.what}: ${this.reason}`);
      return undefined;
    }
  }

  /** `value` (what `beforeAll` made once the adapter opened), or the test skipped with the reason. */
  need<T>(ctx: { skip: (note?: string) => void }, value: T | undefined): T {
    if (value === undefined) {
      ctx.skip(`no WebGPU adapter here: ${this.reason ?? 'unknown'}`);
      throw new Error('unreachable');
    }
    return value;
  }
}
