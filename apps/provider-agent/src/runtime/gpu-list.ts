// Lists the machine's GPUs with whichever vendor tools exist: nvidia-smi (NVIDIA), rocm-smi (AMD),
// system_profiler (macOS) and lspci (any PCI display controller). `gpu-check` prints the list beside
// what each tfjs backend does with it. UNVERIFIED ON HARDWARE for rocm-smi and system_profiler: their
// parsers are tested against the documented output formats (test-fixtures/gpu-list/).
import { runCommand, type CommandResult, type CommandRunner } from './command.js';
import { classifyNvidiaSmi, nvidiaSmiArgs } from './gpu-detect.js';

export type GpuListTool = 'nvidia-smi' | 'rocm-smi' | 'system_profiler' | 'lspci';

/** One GPU as one tool names it. */
export interface ListedGpu {
  readonly source: GpuListTool;
  readonly name: string;
  readonly vendor: string;
  readonly memoryMiB: number | null;
  readonly driver: string | null;
  /** Extra facts the tool gives (compute capability, PCI address, Metal family…). */
  readonly detail: string | null;
}

/** What one tool did: listed GPUs, is not installed, or failed. */
export interface GpuToolRun {
  readonly tool: GpuListTool;
  readonly status: 'ok' | 'absent' | 'failed';
  readonly message: string;
}

export interface GpuListing {
  readonly gpus: readonly ListedGpu[];
  readonly tools: readonly GpuToolRun[];
}

const MIB = 1024 * 1024;

/** `rocm-smi --showproductname --showmeminfo vram --json`: `{ "card0": { "Card series": …, "VRAM Total Memory (B)": … } }`. */
export function parseRocmSmiJson(text: string): ListedGpu[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return [];
  }
  if (typeof data !== 'object' || data === null) return [];
  const gpus: ListedGpu[] = [];
  for (const [card, value] of Object.entries(data as Record<string, unknown>)) {
    if (!/^card\d+$/.test(card) || typeof value !== 'object' || value === null) continue;
    const f = value as Record<string, string | undefined>;
    const name = f['Card Series'] ?? f['Card series'] ?? f['Device Name'] ?? f['Card model'] ?? 'AMD GPU';
    const bytes = Number(f['VRAM Total Memory (B)']);
    gpus.push({
      source: 'rocm-smi',
      name: name.trim(),
      vendor: (f['Card Vendor'] ?? f['Card vendor'] ?? 'AMD').trim(),
      memoryMiB: Number.isFinite(bytes) && bytes > 0 ? Math.round(bytes / MIB) : null,
      driver: null,
      detail: [card, f['GFX Version'] ?? f['Card SKU']].filter((s) => s !== undefined).join(' '),
    });
  }
  return gpus;
}

/** `system_profiler SPDisplaysDataType -json` (macOS): Apple silicon and discrete GPUs. */
export function parseSystemProfilerJson(text: string): ListedGpu[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return [];
  }
  const list = (data as { SPDisplaysDataType?: unknown } | null)?.SPDisplaysDataType;
  if (!Array.isArray(list)) return [];
  return list.flatMap((entry: unknown): ListedGpu[] => {
    if (typeof entry !== 'object' || entry === null) return [];
    const g = entry as Record<string, string | undefined>;
    const name = g.sppci_model ?? g._name;
    if (name === undefined) return [];
    const vram = /^(\d+)\s*(MB|GB)$/i.exec(g.spdisplays_vram ?? g.spdisplays_vram_shared ?? '');
    const vendor = (g.spdisplays_vendor ?? '').replace(/^sppci_vendor_/, '') || 'unknown';
    const detail = [
      g.sppci_cores ? `${g.sppci_cores} cores` : undefined,
      g.spdisplays_mtlgpufamilysupport?.replace(/^spdisplays_/, ''),
    ].filter((s): s is string => s !== undefined);
    return [
      {
        source: 'system_profiler',
        name: name.trim(),
        vendor,
        memoryMiB: vram ? Number(vram[1]) * (vram[2].toUpperCase() === 'GB' ? 1024 : 1) : null,
        driver: null,
        detail: detail.length > 0 ? detail.join(', ') : null,
      },
    ];
  });
}

/** PCI classes of display controllers: VGA (0300), XGA (0301), 3D (0302), other display (0380). */
const DISPLAY_CLASS =
  /^(\S+)\s+(VGA compatible controller|XGA compatible controller|3D controller|Display controller)(?:\s*\[03[0-9a-f]{2}\])?:\s*(.+)$/i;

/** `lspci -nn` lines of display controllers, e.g. `01:00.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 PCIe] [10de:2331] (rev a1)`. */
export function parseLspci(text: string): ListedGpu[] {
  const gpus: ListedGpu[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = DISPLAY_CLASS.exec(line.trim());
    if (!m) continue;
    const description = m[3].replace(/\s*\(rev [0-9a-f]+\)\s*$/i, '').trim();
    const vendor = /^(NVIDIA|Advanced Micro Devices|AMD|Intel|Matrox|ASPEED|Red Hat|VMware|Cirrus)/i.exec(
      description,
    );
    gpus.push({
      source: 'lspci',
      name: description.replace(/\s*\[[0-9a-f]{4}:[0-9a-f]{4}\]$/i, ''),
      vendor: vendor ? vendor[1] : 'unknown',
      memoryMiB: null,
      driver: null,
      detail: `${m[1]} ${m[2]}`,
    });
  }
  return gpus;
}

/** The GPUs nvidia-smi lists (its recorded-output parser is shared with `doctor`). */
export function listFromNvidiaSmi(result: CommandResult): { gpus: ListedGpu[]; run: GpuToolRun } {
  const outcome = classifyNvidiaSmi(result, true);
  switch (outcome.kind) {
    case 'gpus':
      return {
        gpus: outcome.gpus.map((g) => ({
          source: 'nvidia-smi',
          name: g.model,
          vendor: 'NVIDIA',
          memoryMiB: g.vramMiB,
          driver: g.driverVersion,
          detail: `#${g.index}${g.computeCapability ? ` compute ${g.computeCapability}` : ''}`,
        })),
        run: { tool: 'nvidia-smi', status: 'ok', message: `${outcome.gpus.length} GPU(s)` },
      };
    case 'not-installed':
      return { gpus: [], run: { tool: 'nvidia-smi', status: 'absent', message: outcome.message } };
    case 'no-gpus':
      return { gpus: [], run: { tool: 'nvidia-smi', status: 'ok', message: outcome.message } };
    case 'driver-error':
      return { gpus: [], run: { tool: 'nvidia-smi', status: 'failed', message: outcome.message } };
    case 'old-driver':
      return {
        gpus: [],
        run: { tool: 'nvidia-smi', status: 'failed', message: 'driver too old for compute_cap' },
      };
  }
}

const TOOLS: readonly {
  tool: Exclude<GpuListTool, 'nvidia-smi'>;
  file: string;
  args: readonly string[];
  parse: (stdout: string) => ListedGpu[];
}[] = [
  {
    tool: 'rocm-smi',
    file: 'rocm-smi',
    args: ['--showproductname', '--showmeminfo', 'vram', '--json'],
    parse: parseRocmSmiJson,
  },
  {
    tool: 'system_profiler',
    file: 'system_profiler',
    args: ['SPDisplaysDataType', '-json'],
    parse: parseSystemProfilerJson,
  },
  { tool: 'lspci', file: 'lspci', args: ['-nn'], parse: parseLspci },
];

/** Runs every GPU tool that exists here; never throws. */
export async function listGpus(run: CommandRunner = runCommand, timeoutMs = 15_000): Promise<GpuListing> {
  const gpus: ListedGpu[] = [];
  const tools: GpuToolRun[] = [];
  const nvidia = listFromNvidiaSmi(await run('nvidia-smi', nvidiaSmiArgs(true), { timeoutMs }));
  gpus.push(...nvidia.gpus);
  tools.push(nvidia.run);
  for (const t of TOOLS) {
    const result = await run(t.file, t.args, { timeoutMs });
    if (result.errorCode === 'ENOENT' || result.errorCode === 'EACCES') {
      tools.push({
        tool: t.tool,
        status: 'absent',
        message: `${t.file} is not available (${result.errorCode})`,
      });
      continue;
    }
    if (result.exitCode !== 0) {
      const why = result.timedOut ? 'timed out' : `exit ${result.exitCode ?? 'none'}`;
      const first = `${result.stderr}\n${result.stdout}`.trim().split(/\r?\n/)[0] ?? '';
      tools.push({
        tool: t.tool,
        status: 'failed',
        message: `${t.file} failed (${why})${first ? `: ${first}` : ''}`,
      });
      continue;
    }
    const found = t.parse(result.stdout);
    gpus.push(...found);
    tools.push({ tool: t.tool, status: 'ok', message: `${found.length} GPU(s)` });
  }
  return { gpus, tools };
}
