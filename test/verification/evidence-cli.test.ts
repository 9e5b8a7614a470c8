// The `gpumesh` operator CLI as a real process (built JS from dist/): verify-evidence on a bundle that
// proves a wrong result (exit 0), one against an honest result and a tampered one (exit 1), usage
// errors (exit 2), a redacted bundle (exit 3: integrity only), and `gpumesh audit --help`.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { evidenceHash, redactEvidence } from '../../libs/verification/src/evidence.js';
import { bundleAgainst, mapValues } from '../../libs/verification/src/test-fixtures.js';

const CLI = join(process.cwd(), 'dist/apps/cli/src/main.js');

function gpumesh(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('gpumesh CLI', () => {
  let dir: string;
  const files: Record<string, string> = {};

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
    dir = mkdtempSync(join(tmpdir(), 'gpumesh-evidence-'));
    const write = (name: string, value: unknown): void => {
      files[name] = join(dir, `${name}.json`);
      writeFileSync(files[name], typeof value === 'string' ? value : JSON.stringify(value, null, 2));
    };
    const wrong = await bundleAgainst('few-wrong');
    write('wrong', wrong);
    // Against an honest result, with the recorded verdict forged to "disagree": only the
    // recomputation can tell.
    const honest = await bundleAgainst('honest');
    write('honest', { ...honest, verdict: { ...honest.verdict, agree: false, reason: 'forged' } });
    const tampered = structuredClone(wrong);
    // Swap in the reference's values: the outputs now look honest, but the signed receipt covers others.
    tampered.disclosed = {
      ...tampered.disclosed,
      accusedOutputs: (tampered.disclosed?.referenceOutputs ?? []).map((t) => mapValues(t, (v) => v)),
    };
    write('tampered', tampered);
    write('garbled', '{ "type": "gpumesh/evidence", ');
    write('redacted', redactEvidence(wrong));
    files.hash = evidenceHash(wrong);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exits 0 on evidence of a wrong result', async () => {
    const r = await gpumesh('verify-evidence', files.wrong);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/VALID/);
    expect(r.stdout).toMatch(/evidence hash 0x[0-9a-f]{64}/);
    expect(r.code).toBe(0);
    const json = await gpumesh('verify-evidence', files.wrong, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: true, reasons: [] });
  });

  it('exits 1 on a bundle against an honest result and on a tampered one', async () => {
    const honest = await gpumesh('verify-evidence', files.honest, '--json');
    expect(honest.code).toBe(1);
    expect((JSON.parse(honest.stdout) as { reasons: string[] }).reasons.join()).toMatch(/honest result/);
    const tampered = await gpumesh('verify-evidence', files.tampered);
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toMatch(/INVALID/);
    expect(tampered.stdout).toMatch(/outputHash does not match/);
  });

  it('exits 3 on a redacted bundle: integrity checked under the same evidence hash, what is withheld named', async () => {
    const r = await gpumesh('verify-evidence', files.redacted);
    expect(r.stdout).toMatch(/CONSISTENT \(redacted\) — integrity checked, not recomputed/);
    expect(r.stdout).toContain(`evidence hash ${files.hash}`);
    expect(r.stdout).toMatch(/withheld +the job inputs/);
    expect(r.code).toBe(3);
    const json = JSON.parse((await gpumesh('verify-evidence', files.redacted, '--json')).stdout) as {
      valid: boolean;
      consistent: boolean;
      withheld: string[];
    };
    expect(json).toMatchObject({ valid: false, consistent: true });
    expect(json.withheld).toEqual(['the job inputs', 'the accused outputs', 'the reference outputs']);
  });

  it('exits 2 with a clear message on a missing or garbled file and on bad usage', async () => {
    const missing = await gpumesh('verify-evidence', join(dir, 'nope.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*nope\.json: no such file/);
    const garbled = await gpumesh('verify-evidence', files.garbled);
    expect(garbled.code).toBe(2);
    expect(garbled.stderr).toMatch(/is not JSON/);
    expect((await gpumesh('verify-evidence')).code).toBe(2);
    expect((await gpumesh('verify-evidence', files.wrong, '--backend', 'gpu')).code).toBe(2);
    expect((await gpumesh('frobnicate')).code).toBe(2);
  });

  it('prints help for every command', async () => {
    const main = await gpumesh('--help');
    expect(main.code).toBe(0);
    expect(main.stdout).toMatch(/verify-evidence/);
    const verify = await gpumesh('verify-evidence', '--help');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/exit code: 0/);
    const audit = await gpumesh('audit', '--help');
    expect(audit.code).toBe(0);
    expect(audit.stdout).toMatch(/usage: gpumesh audit <epoch-file> --rpc <url> --distributor <address>/);
  });
});
