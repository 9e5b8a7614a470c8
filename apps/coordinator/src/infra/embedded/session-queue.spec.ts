import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { useSessionQueue } from './session-queue.js';

/**
 * Several pg clients send parameterised queries (extended protocol) and transactions at once to one
 * PGlite session. Each must get the answer to its own query: with pglite-socket's own queue a
 * Parse from one connection lands between another's Parse and Bind.
 */
async function hammer(fixed: boolean): Promise<{ wrong: number; errors: string[] }> {
  const db = await PGlite.create();
  await db.exec(
    'CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counter VALUES (1, 0);',
  );
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 16 });
  if (fixed) useSessionQueue(server, db);
  await server.start();
  const port = Number(server.getServerConn().split(':').pop());
  const pool = new pg.Pool({ connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres`, max: 6 });
  cleanups.push(async () => {
    await pool.end();
    await server.stop();
    await db.close();
  });
  let wrong = 0;
  const errors: string[] = [];
  const work = Array.from({ length: 240 }, async (_, i) => {
    try {
      if (i % 6 === 0) {
        // A transaction interleaved with everyone else's statements.
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await client.query('UPDATE counter SET n = n + $1 WHERE id = $2', [1, 1]);
          await client.query('COMMIT');
        } finally {
          client.release();
        }
        return;
      }
      // Different parameter counts and types, so a mixed-up Bind fails or answers wrongly.
      const result =
        i % 2 === 0
          ? await pool.query<{ s: number }>('SELECT $1::int + $2::int + $3::int AS s', [i, 1, 2])
          : await pool.query<{ s: number }>('SELECT $1::int * $2::int + $3::int - $4::int AS s', [
              i,
              2,
              5,
              5,
            ]);
      if (result.rows[0].s !== (i % 2 === 0 ? i + 3 : i * 2)) wrong += 1;
    } catch (error) {
      errors.push((error as Error).message);
    }
  });
  await Promise.all(work);
  const { rows } = await pool.query<{ n: number }>('SELECT n FROM counter WHERE id = 1');
  if (rows[0].n !== 40) errors.push(`counter is ${rows[0].n}, not 40`);
  return { wrong, errors };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup().catch(() => undefined);
});

describe('SessionQueryQueue (embedded PostgreSQL over the wire)', () => {
  it('gives every connection the answer to its own parameterised query, transactions included', async () => {
    const { wrong, errors } = await hammer(true);
    expect(errors).toEqual([]);
    expect(wrong).toBe(0);
  }, 60_000);

  it('is needed: pglite-socket’s own queue mixes concurrent extended-protocol batches up', async () => {
    const { wrong, errors } = await hammer(false);
    expect(wrong + errors.length).toBeGreaterThan(0);
  }, 60_000);
});
