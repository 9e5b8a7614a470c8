import { z } from 'zod';

/** Most distinct operators a redundant job may run on. */
export const MAX_VERIFICATION_K = 3;
/** Largest share of traffic that may be mirrored as canaries. */
export const MAX_CANARY_RATE = 0.5;

/**
 * How a job's result is checked before anyone is paid: `none` trusts one provider, `redundant` runs
 * it on `k` distinct operators and compares; `canaryRate` is the share of dispatches that are
 * followed by a known-answer canary of the same kind and shape.
 */
export const VerificationPolicySchema = z
  .strictObject(
    {
      mode: z.enum(['none', 'redundant'], { error: 'expected mode none | redundant' }),
      k: z
        .number({ error: 'expected integer' })
        .int({ error: 'expected integer' })
        .min(2, { error: `expected 2..${MAX_VERIFICATION_K}` })
        .max(MAX_VERIFICATION_K, { error: `expected 2..${MAX_VERIFICATION_K}` })
        .optional(),
      canaryRate: z
        .number({ error: 'expected a number' })
        .min(0, { error: `expected 0..${MAX_CANARY_RATE}` })
        .max(MAX_CANARY_RATE, { error: `expected 0..${MAX_CANARY_RATE}` })
        .optional(),
      /** Deliver only checked results (docs/verification.md "Trust tiers"): a job completes after a check passed. */
      verified: z.boolean({ error: 'expected boolean' }).optional(),
    },
    { error: 'expected a verification policy { mode, k?, canaryRate?, verified? }' },
  )
  .superRefine((p, ctx) => {
    if (p.mode === 'none' && p.k !== undefined)
      ctx.addIssue({ code: 'custom', path: ['k'], message: 'k applies only to mode redundant' });
  })
  .transform((p) => ({
    mode: p.mode,
    k: p.mode === 'redundant' ? (p.k ?? 2) : 1,
    canaryRate: p.canaryRate ?? 0,
    ...(p.verified === true ? { verified: true as const } : {}),
  }));

export type VerificationPolicy = z.output<typeof VerificationPolicySchema>;
export type VerificationPolicyInput = z.input<typeof VerificationPolicySchema>;

/** Every run-time setting: its schema, label and what it does. The default comes from the config. */
export const SETTING_SCHEMAS = {
  verification: VerificationPolicySchema,
  platformFeeBps: z
    .number({ error: 'expected integer basis points' })
    .int({ error: 'expected integer basis points' })
    .min(0, { error: 'expected 0..10000' })
    .max(10_000, { error: 'expected 0..10000' }),
  epochSeconds: z
    .number({ error: 'expected integer seconds' })
    .int({ error: 'expected integer seconds' })
    .min(1, { error: 'expected at least 1 second' })
    .max(30 * 24 * 3600, { error: 'expected at most 30 days' }),
} as const;

export type SettingKey = keyof typeof SETTING_SCHEMAS;
export type SettingValue<K extends SettingKey> = z.output<(typeof SETTING_SCHEMAS)[K]>;
export type SettingValues = { [K in SettingKey]: SettingValue<K> };

export const SETTING_KEYS = Object.keys(SETTING_SCHEMAS) as SettingKey[];

export const SETTING_LABELS: Record<SettingKey, { label: string; note: string }> = {
  verification: {
    label: 'Default verification policy',
    note: 'applies to jobs whose request and account name none: none | redundant(k), plus a canary rate',
  },
  platformFeeBps: { label: 'Platform fee (bps)', note: 'taken from each provider payment' },
  epochSeconds: {
    label: 'Epoch length (s)',
    note: 'how often provider earnings are rolled into a Merkle root and posted',
  },
};

export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTING_SCHEMAS, key);
}
