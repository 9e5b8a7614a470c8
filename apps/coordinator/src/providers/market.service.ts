import { Injectable } from '@nestjs/common';
import { SettingsService } from '../settings/settings.service.js';
import { MarketRepository } from './market.repository.js';

/** A provider counts as live when its last advert is younger than this (adverts live 60 s). */
export const MARKET_LIVE_WINDOW_MS = 120_000;

export interface PriceRange {
  providers: number;
  /** Base units per work unit (1 MFLOP); null when no provider is live. */
  min: string | null;
  median: string | null;
  max: string | null;
}

export interface MarketSummary extends PriceRange {
  /** The platform fee taken from each provider payment, basis points. */
  feeBps: number;
  byBackend: Record<string, PriceRange>;
  at: string;
}

/** min / median (lower middle) / max of a list of prices. */
export function priceRange(prices: readonly bigint[]): PriceRange {
  if (prices.length === 0) return { providers: 0, min: null, median: null, max: null };
  const sorted = [...prices].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    providers: sorted.length,
    min: sorted[0].toString(),
    median: sorted[Math.floor((sorted.length - 1) / 2)].toString(),
    max: sorted[sorted.length - 1].toString(),
  };
}

/** What live providers charge: the range a new provider prices itself against (`gpumesh-agent init`). */
@Injectable()
export class MarketService {
  constructor(
    private readonly market: MarketRepository,
    private readonly settings: SettingsService,
  ) {}

  async summary(now = new Date()): Promise<MarketSummary> {
    const [rows, feeBps] = await Promise.all([
      this.market.livePrices(new Date(now.getTime() - MARKET_LIVE_WINDOW_MS)),
      this.settings.get('platformFeeBps'),
    ]);
    const byBackend: Record<string, PriceRange> = {};
    for (const backend of [...new Set(rows.map((r) => r.backend))].sort()) {
      byBackend[backend] = priceRange(rows.filter((r) => r.backend === backend).map((r) => r.pricePerUnit));
    }
    return { ...priceRange(rows.map((r) => r.pricePerUnit)), feeBps, byBackend, at: now.toISOString() };
  }
}
