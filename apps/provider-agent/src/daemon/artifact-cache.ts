import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashArtifact, type ModelArtifact } from '@gpumesh/p2p';

/** Verified model artifacts on disk, by content hash; a corrupted file is dropped and fetched again. */
export class ArtifactCache {
  constructor(private readonly dir: string) {}

  async get(hash: string): Promise<ModelArtifact | undefined> {
    try {
      const meta = JSON.parse(await readFile(join(this.dir, `${hash}.json`), 'utf8')) as {
        format: 'layers' | 'graph';
        modelJson: unknown;
      };
      const weights = new Uint8Array(await readFile(join(this.dir, `${hash}.bin`)));
      if (hashArtifact(meta.modelJson, weights) !== hash) return undefined;
      return { format: meta.format, modelJson: meta.modelJson, weights };
    } catch {
      return undefined;
    }
  }

  async put(hash: string, artifact: ModelArtifact): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `.${hash}.${process.pid}`);
    await writeFile(`${tmp}.bin`, artifact.weights);
    await writeFile(
      `${tmp}.json`,
      JSON.stringify({ format: artifact.format, modelJson: artifact.modelJson }),
    );
    await rename(`${tmp}.bin`, join(this.dir, `${hash}.bin`));
    await rename(`${tmp}.json`, join(this.dir, `${hash}.json`));
  }

  /** The cached artifact, else fetched with `fetch`, verified and stored. */
  async getOrFetch(hash: string, fetch: () => Promise<ModelArtifact>): Promise<ModelArtifact> {
    const cached = await this.get(hash);
    if (cached) return cached;
    const fetched = await fetch();
    if (hashArtifact(fetched.modelJson, fetched.weights) !== hash)
      throw new Error(`artifact ${hash}: hash mismatch`);
    await this.put(hash, fetched);
    return fetched;
  }
}
