import { CliError } from './output.js';

export const PASSPHRASE_ENV = 'GPUMESH_AGENT_PASSPHRASE';

/** The keystore passphrase: from GPUMESH_AGENT_PASSPHRASE, else asked on the terminal. */
export async function readPassphrase(env: NodeJS.ProcessEnv, confirm: boolean): Promise<string> {
  const fromEnv = env[PASSPHRASE_ENV];
  if (fromEnv) return fromEnv;
  if (!process.stdin.isTTY) {
    throw new CliError(`no passphrase: set ${PASSPHRASE_ENV} or run in a terminal to be asked`);
  }
  const { default: password } = await import('@inquirer/password');
  const first = await password({ message: 'Keystore passphrase', mask: '*' });
  if (confirm) {
    const second = await password({ message: 'Repeat the passphrase', mask: '*' });
    if (first !== second) throw new CliError('the two passphrases differ');
  }
  return first;
}
