// SSRF guard of webhook URLs: a webhook may only reach the public internet. Checked when the URL is
// registered and again at each delivery, against every address its host resolves to; the delivery
// then connects to the address that was checked (no second lookup a rebinding DNS could answer).
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/** Longest webhook URL accepted. */
export const MAX_WEBHOOK_URL_LENGTH = 2048;

/**
 * Address ranges a webhook may not reach: private, loopback, link-local, shared, reserved... One
 * list per family: node's BlockList matches IPv4 addresses against an IPv4-mapped IPv6 rule.
 */
const BLOCKED_V4 = new BlockList();
const BLOCKED_V6 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  BLOCKED_V4.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['::ffff:0:0', 96], // IPv4-mapped (would reach the IPv4 ranges above)
  ['64:ff9b::', 96], // NAT64
  ['64:ff9b:1::', 48], // local NAT64
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo included)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4 (embeds any IPv4 address)
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED_V6.addSubnet(net, prefix, 'ipv6');
}

/** Whether an IP address is on the public internet (not private, loopback, link-local, reserved). */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return family === 4 ? !BLOCKED_V4.check(address, 'ipv4') : !BLOCKED_V6.check(address, 'ipv6');
}

export class WebhookUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookUrlError';
  }
}

export interface WebhookUrlPolicy {
  /** Accept http:// and private, loopback and link-local addresses (development and tests only). */
  allowPrivate: boolean;
  /** Resolves a host name to all its addresses (tests inject one). */
  resolve?: (host: string) => Promise<string[]>;
}

async function resolveAll(host: string): Promise<string[]> {
  const found = await lookup(host, { all: true, verbatim: true });
  return found.map((a) => a.address);
}

/** A checked URL and the address a delivery connects to. */
export interface ResolvedWebhookUrl {
  url: URL;
  address: string;
  family: 4 | 6;
}

/**
 * Parses and checks a webhook URL: https (http only with allowPrivate), no credentials, and a
 * host whose every address is public (unless allowPrivate). Returns the first address to connect
 * to. Throws WebhookUrlError saying what is wrong.
 */
export async function resolveWebhookUrl(raw: string, policy: WebhookUrlPolicy): Promise<ResolvedWebhookUrl> {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_WEBHOOK_URL_LENGTH) {
    throw new WebhookUrlError(`url: expected an https URL of at most ${MAX_WEBHOOK_URL_LENGTH} characters`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookUrlError('url: not a valid URL');
  }
  if (url.protocol !== 'https:' && !(policy.allowPrivate && url.protocol === 'http:')) {
    throw new WebhookUrlError(`url: expected https, got ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new WebhookUrlError('url: must not carry credentials (the body is signed instead)');
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!policy.allowPrivate && (host === 'localhost' || host.endsWith('.localhost'))) {
    throw new WebhookUrlError(`url: ${host} is not a public host`);
  }
  let addresses: string[];
  if (isIP(host) !== 0) addresses = [host];
  else {
    try {
      addresses = await (policy.resolve ?? resolveAll)(host);
    } catch (err) {
      throw new WebhookUrlError(
        `url: ${host} does not resolve (${err instanceof Error ? err.message : String(err)})`,
      );
    }
  }
  if (addresses.length === 0) throw new WebhookUrlError(`url: ${host} does not resolve`);
  if (!policy.allowPrivate) {
    const blocked = addresses.find((a) => !isPublicAddress(a));
    if (blocked !== undefined) {
      throw new WebhookUrlError(`url: ${host} resolves to ${blocked}, which is not a public address`);
    }
  }
  const address = addresses[0];
  return { url, address, family: isIP(address) === 6 ? 6 : 4 };
}
