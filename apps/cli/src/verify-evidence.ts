// gpumesh verify-evidence <file> [--json] [--backend cpu|wasm] [--max-work-units <n>]
// Checks an evidence bundle offline. Exit code 0 when it proves a wrong result, 1 when it does not
// (honest result, forged signature, tampered outputs, ...), 2 on usage errors and unreadable files,
// 3 when a redacted bundle is consistent but cannot be recomputed (its private data withheld).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import {
  DEFAULT_EVIDENCE_MAX_WORK_UNITS,
  verifyEvidence,
  type EvidenceVerification,
} from '@gpumesh/verification';

import type { CliIo } from './io.js';

export const VERIFY_EVIDENCE_USAGE = `usage: gpumesh verify-evidence <file> [--json] [--backend cpu|wasm] [--max-work-units <n>]

Checks an evidence bundle (JSON) offline: the accused provider's receipt signature and signer, that
the receipt covers this job, its inputs and exactly the accused outputs, then recomputes the job on
this machine's CPU (inference and train with the model embedded in the bundle, checked against its
hash; nothing is fetched) and compares it with the accused outputs under the verification bounds.

A redacted bundle (what GET /v1/evidence/<hash> serves to anyone but the job's owner, the accused
operator and admins) names the job's inputs and outputs by digest and its model by hash: the command
then checks only its integrity (signatures, receipts against the committed digests, spec hash, and
the evidence hash, the same as the full bundle's) and says what is withheld; it cannot recompute.

  --json                 print the whole verdict as JSON
  --backend <name>       cpu (default; plain JavaScript, identical everywhere) or wasm (faster)
  --max-work-units <n>   refuse to recompute jobs costing more (default ${DEFAULT_EVIDENCE_MAX_WORK_UNITS}; 1 unit = 10^6 FLOPs)
  -h, --help             this help

exit code: 0 the evidence proves a wrong result, 1 it does not, 2 usage error or unreadable file,
           3 a redacted bundle whose commitment checks out (integrity only, not recomputed)`;

/** Exit code of a redacted bundle that is consistent but could not be recomputed. */
export const EXIT_REDACTED_CONSISTENT = 3;

export async function runVerifyEvidenceCli(argv: readonly string[], io: CliIo): Promise<number> {
  let values: { json?: boolean; help?: boolean; backend?: string; 'max-work-units'?: string };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        backend: { type: 'string' },
        'max-work-units': { type: 'string' },
      },
    }));
  } catch (err) {
    io.err(`gpumesh verify-evidence: ${(err as Error).message}\n\n${VERIFY_EVIDENCE_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(VERIFY_EVIDENCE_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    io.err(
      `gpumesh verify-evidence: expected exactly one evidence file, got ${positionals.length}\n\n${VERIFY_EVIDENCE_USAGE}`,
    );
    return 2;
  }
  const backend = values.backend ?? 'cpu';
  if (backend !== 'cpu' && backend !== 'wasm') {
    io.err(`gpumesh verify-evidence: --backend must be cpu or wasm, got "${backend}"`);
    return 2;
  }
  let maxWorkUnits = DEFAULT_EVIDENCE_MAX_WORK_UNITS;
  const budget = values['max-work-units'];
  if (budget !== undefined) {
    if (!/^[1-9][0-9]{0,29}$/.test(budget)) {
      io.err(`gpumesh verify-evidence: --max-work-units must be a positive integer, got "${budget}"`);
      return 2;
    }
    maxWorkUnits = BigInt(budget);
  }
  const file = positionals[0];
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    io.err(`gpumesh verify-evidence: cannot read ${file}: ${why}`);
    return 2;
  }
  let bundle: unknown;
  try {
    bundle = JSON.parse(text);
  } catch (err) {
    io.err(`gpumesh verify-evidence: ${file} is not JSON: ${(err as Error).message}`);
    return 2;
  }
  const result = await verifyEvidence(bundle, { backend, maxWorkUnits });
  if (values.json) {
    io.out(JSON.stringify({ file, ...result }, null, 2));
  } else {
    const redacted = isRedactedConsistent(result);
    io.out(
      `${file}: ${
        result.valid
          ? 'VALID — the accused result is wrong'
          : redacted
            ? 'CONSISTENT (redacted) — integrity checked, not recomputed: the evidence hash, signatures and committed digests hold'
            : 'INVALID — the evidence does not prove a wrong result'
      }`,
    );
    if (result.hash) io.out(`  evidence hash ${result.hash}`);
    for (const c of result.checks) io.out(`  ok    ${c}`);
    if (redacted) {
      for (const w of result.withheld) io.out(`  withheld  ${w}`);
      io.out(
        "  to recompute, fetch the full bundle as the job's owner, the accused operator or an admin (GET /v1/evidence/<hash> with an API key)",
      );
    } else {
      for (const r of result.reasons) io.out(`  fail  ${r}`);
    }
  }
  return result.valid ? 0 : isRedactedConsistent(result) ? EXIT_REDACTED_CONSISTENT : 1;
}

function isRedactedConsistent(result: EvidenceVerification): boolean {
  return !result.valid && result.consistent && result.withheld.length > 0;
}
