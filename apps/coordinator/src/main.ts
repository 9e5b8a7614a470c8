import { parseArgs } from 'node:util';
import { COORDINATOR_ROLES, ConfigError, loadConfig } from './config/config.js';
import { createLogger } from './logging/logger.js';
import { humanLogStream } from './logging/human-log.js';
import { startCoordinator } from './bootstrap.js';
import { startDevWatcher } from './dev/dev-watcher.js';
import { startLocalAgents } from './dev/local-agents.js';

const HELP = `gpumesh coordinator

usage: node dist/apps/coordinator/src/main.js [options]

options:
  --role <api|worker|all>  serve the REST API, run the queue workers, or both (default: all; env ROLE)
  --port <n>               HTTP port (default 8080; 0 picks a free one; env PORT)
  --host <addr>            HTTP bind address (default 127.0.0.1; env HOST)
  --data-dir <dir>         where embedded PostgreSQL and dev keys live (default .data; env DATA_DIR)
  --dev                    create a dev developer account with credits and an admin account, print their keys
  --agents <n>             also start n local provider agents (default 2 with --dev, else 0)
  -h, --help               this help

Without DATABASE_URL an embedded PostgreSQL (PGlite) runs under the data dir; without REDIS_URL the
local Redis on 127.0.0.1:6379 is used if it answers, else an embedded one. See .env.example.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      dev: { type: 'boolean' },
      agents: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (values.role && !(COORDINATOR_ROLES as readonly string[]).includes(values.role)) {
    throw new ConfigError(`--role must be one of ${COORDINATOR_ROLES.join(', ')}`);
  }
  const config = loadConfig(process.env, {
    ROLE: values.role,
    PORT: values.port,
    HOST: values.host,
    DATA_DIR: values['data-dir'],
    DEV_BOOTSTRAP: values.dev ? 'true' : undefined,
    // --dev settles on a local chain unless SETTLEMENT_ENABLED says otherwise.
    SETTLEMENT_ENABLED: values.dev && !process.env.SETTLEMENT_ENABLED ? 'true' : undefined,
  });
  // --dev starts 2 local agents where there is a worker to give them work (an api-only process has none).
  const agentCount =
    values.agents === undefined
      ? config.DEV_BOOTSTRAP && config.ROLE !== 'api'
        ? 2
        : 0
      : Number(values.agents);
  if (!Number.isInteger(agentCount) || agentCount < 0 || agentCount > 32) {
    throw new ConfigError('--agents must be an integer from 0 to 32');
  }
  if (agentCount > 0 && config.ROLE === 'api')
    throw new ConfigError('--agents needs a worker (--role all or worker)');
  const human =
    config.LOG_FORMAT === 'pretty' ||
    (config.LOG_FORMAT === 'auto' && config.DEV_BOOTSTRAP && process.stdout.isTTY);
  const logger = createLogger(config.LOG_LEVEL, human ? humanLogStream(process.stdout) : undefined);
  const coordinator = await startCoordinator(config, logger);
  let localAgents: Awaited<ReturnType<typeof startLocalAgents>> | null = null;
  if (agentCount > 0) {
    try {
      localAgents = await startLocalAgents({
        count: agentCount,
        coordinatorUrl: coordinator.url,
        dataDir: config.DATA_DIR,
      });
    } catch (err) {
      await coordinator.close();
      throw err;
    }
  }
  const lines = [
    '',
    `  API        ${coordinator.url}/v1`,
    `  docs       ${coordinator.url}/docs   (OpenAPI JSON: ${coordinator.url}/docs/json)`,
    `  health     ${coordinator.url}/health   metrics: ${coordinator.url}/metrics`,
    `  dashboard  ${coordinator.dashboardUrl ?? (config.ROLE === 'worker' ? 'served by the api role' : 'not built (npm run build)')}${coordinator.dev ? '   (sign in with the admin key below)' : ''}`,
    `  role       ${config.ROLE}   database: ${coordinator.endpoints.embeddedDatabase ? `embedded PGlite (${config.DATA_DIR}/pglite)` : 'DATABASE_URL'}   redis: ${coordinator.endpoints.embeddedRedis ? 'embedded' : coordinator.endpoints.redisUrl.replace(/\/\/[^@]*@/, '//')}`,
  ];
  if (coordinator.dev) {
    lines.push(
      `  dev key    ${coordinator.dev.developerKey}   (account ${coordinator.dev.developerAddress}, ${coordinator.dev.credits} dev credits)`,
      `  admin key  ${coordinator.dev.adminKey}   (account ${coordinator.dev.adminAddress})`,
      `  try        curl -H "Authorization: Bearer ${coordinator.dev.developerKey}" ${coordinator.url}/v1/account`,
    );
  }
  for (const agent of localAgents?.agents ?? []) {
    lines.push(`  agent ${agent.index}    ${agent.peerId}   backend ${agent.backend}`);
  }
  const watcher =
    coordinator.chain && config.ROLE !== 'worker'
      ? startDevWatcher({ coordinatorUrl: coordinator.url, chain: coordinator.chain })
      : null;
  if (coordinator.chain) {
    const { chain } = coordinator;
    lines.push(
      `  chain      ${chain.rpcUrl} (id ${chain.chainId}${chain.dev ? `, local dev chain: state in ${config.DATA_DIR}/chain` : ''})   distributor ${chain.contracts.distributor}   escrow ${chain.contracts.escrow}`,
      `  payouts    epochs: ${coordinator.url}/v1/rewards/epochs   proof: ${coordinator.url}/v1/rewards/proof/<address>`,
    );
    if (chain.dev && config.ROLE !== 'worker') {
      lines.push(
        `  fund       a new wallet: npx gpumesh dev fund <0x address> --coordinator ${coordinator.url}`,
        `             (ETH for gas + tokens from the dev faucet; add --deposit <tokens> --key-env <VAR holding its key>`,
        `             to deposit into the escrow too, then sign in with it: README "Billing and funding")`,
      );
    }
    if (watcher) {
      lines.push(
        `  watcher    gpumesh watch checks every root posted and vetoes a wrong one (guardian ${watcher.guardian}, not the settler)`,
      );
    }
  }
  process.stdout.write(`${lines.join('\n')}\n\ngpumesh ready\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    watcher?.stop();
    (localAgents ? localAgents.stop() : Promise.resolve())
      .then(() => coordinator.close())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      });
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || (err instanceof Error && err.name === 'EmbeddedStartError')) {
    console.error(`gpumesh: ${err.message}`);
  } else {
    console.error('gpumesh: failed to start:', err);
  }
  process.exit(1);
});
