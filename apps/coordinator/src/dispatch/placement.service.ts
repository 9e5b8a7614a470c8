import { Injectable } from '@nestjs/common';
import type { Job, Provider } from '#prisma';
import { ProvidersRepository } from '../providers/providers.repository.js';

export interface Placement {
  peerId: string;
  operatorId: string;
  pricePerUnit: bigint;
}

/**
 * Chooses providers for a job from the persisted provider view: online, a free slot, the backend and
 * VRAM asked for, within the job's price, and `redundancy` distinct operators, cheapest first.
 */
@Injectable()
export class PlacementService {
  constructor(private readonly providers: ProvidersRepository) {}

  async place(job: Job, now: Date): Promise<Placement[]> {
    const spec = job.spec as {
      requirements?: { minVramMiB?: number; backends?: string[]; gpuModels?: string[] };
    };
    const req = spec.requirements ?? {};
    const candidates = (await this.providers.placeable(now)).filter((p) => fits(p, job, req));
    candidates.sort((a, b) =>
      a.pricePerUnit === b.pricePerUnit
        ? b.reputation - a.reputation
        : a.pricePerUnit < b.pricePerUnit
          ? -1
          : 1,
    );
    const chosen: Placement[] = [];
    const operators = new Set<string>();
    for (const p of candidates) {
      if (operators.has(p.operatorId)) continue;
      operators.add(p.operatorId);
      chosen.push({ peerId: p.peerId, operatorId: p.operatorId, pricePerUnit: p.pricePerUnit });
      if (chosen.length === job.redundancy) return chosen;
    }
    return [];
  }
}

function fits(
  p: Provider,
  job: Job,
  req: { minVramMiB?: number; backends?: string[]; gpuModels?: string[] },
): boolean {
  if (p.pricePerUnit > job.pricePerUnit) return false;
  if (req.backends && req.backends.length > 0 && !req.backends.includes(p.backend)) return false;
  const gpus = Array.isArray(p.gpus) ? (p.gpus as { model?: string; vramMiB?: number }[]) : [];
  if (req.minVramMiB && !gpus.some((g) => (g.vramMiB ?? 0) >= (req.minVramMiB ?? 0))) return false;
  if (req.gpuModels && req.gpuModels.length > 0 && !gpus.some((g) => req.gpuModels?.includes(g.model ?? '')))
    return false;
  return true;
}
