// Runs the Python client's interpreter (clients/python) from a test, without blocking the event loop
// (a coordinator in the same process shares it).
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const PYTHON_CLIENT_DIR = join(process.cwd(), 'clients/python');
/** The interpreter: python3 on PATH unless GPUMESH_PYTHON names another (one with NumPy). */
const PYTHON = process.env.GPUMESH_PYTHON ?? 'python3';

export interface PythonRun {
  code: number | null;
  output: string;
}

/** Runs python3 with `args` in clients/python, `env` added to this process's. */
export function runPython(args: string[], env: Record<string, string>): Promise<PythonRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, { cwd: PYTHON_CLIENT_DIR, env: { ...process.env, ...env } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => reject(new Error(`cannot run ${PYTHON} (install python3): ${err.message}`)));
    child.on('close', (code) => resolve({ code, output }));
  });
}
