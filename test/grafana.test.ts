import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Registry } from 'prom-client';
import { createHostMetrics } from '../host/metrics.ts';
import { createGatewayMetrics } from '../providers/http-gateway/metrics.ts';

/** Grafana cannot run here: the dashboard's queries are checked against what the code registers. */

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string; refId: string }[];
  panels?: Panel[];
  gridPos: { h: number; w: number; x: number; y: number };
}

const dashboard = JSON.parse(readFileSync(new URL('../deploy/grafana/trellis.json', import.meta.url), 'utf8')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
};

/** Series names and label names of a real registry, as Prometheus sees them when it scrapes. */
async function exported(registries: Registry[]): Promise<Map<string, Set<string>>> {
  const names = new Map<string, Set<string>>();
  for (const registry of registries) {
    const text = await registry.metrics();
    // Default labels (lattice, host_id) show on the exposed series; add them to every name.
    const defaults = new Set<string>();
    for (const m of text.matchAll(/^[a-zA-Z_:][\w:]*\{([^}]*)\}/gm)) for (const l of m[1]!.matchAll(/(\w+)="/g)) defaults.add(l[1]!);
    for (const metric of registry.getMetricsAsArray()) {
      const real = metric as unknown as { name: string; labelNames?: string[]; get(): Promise<{ type: string }> };
      const { name, labelNames = [] } = real;
      const type = (await real.get()).type;
      const series = type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : type === 'summary' ? [name, `${name}_sum`, `${name}_count`] : [name];
      for (const s of series) {
        const labels = names.get(s) ?? new Set<string>();
        for (const l of [...labelNames, ...defaults, ...(s.endsWith('_bucket') ? ['le'] : []), ...(type === 'summary' ? ['quantile'] : [])]) labels.add(l);
        names.set(s, labels);
      }
    }
  }
  return names;
}

const FUNCTIONS_AND_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);
/** Labels Prometheus adds to every scraped series. */
const SCRAPE_LABELS = ['job', 'instance'];

/** The metric names, label matchers and grouping labels of a PromQL expression (Grafana's variables allowed). */
export function parsePromQL(expr: string): { metrics: string[]; matchers: { metric: string; label: string }[]; grouping: string[] } {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const matchers: { metric: string; label: string }[] = [];
  for (const m of e.matchAll(/([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}/g)) {
    for (const l of m[2]!.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)) matchers.push({ metric: m[1]!, label: l[1]! });
  }
  const grouping: string[] = [];
  for (const m of e.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) grouping.push(...m[1]!.split(',').map((s) => s.trim()).filter(Boolean));
  e = e.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ').replace(/\b(?:by|without)\s*\([^)]*\)/g, ' ');
  const metrics = [...e.matchAll(/(?<![\w$.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)].map((m) => m[1]!).filter((w) => !FUNCTIONS_AND_KEYWORDS.has(w));
  return { metrics, matchers, grouping };
}

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

describe('Grafana dashboard and Prometheus example', () => {
  it('grafana - the query parser finds names, matchers and grouping labels (and nothing else)', () => {
    const parsed = parsePromQL('histogram_quantile(0.99, sum by (le, route) (rate(trellis_x_bucket{lattice=~"$lattice",status=~"5.."}[$__rate_interval]))) / clamp_min(sum(up), 1e-9)');
    expect(parsed.metrics).toEqual(['trellis_x_bucket', 'up']);
    expect(parsed.matchers).toEqual([{ metric: 'trellis_x_bucket', label: 'lattice' }, { metric: 'trellis_x_bucket', label: 'status' }]);
    expect(parsed.grouping).toEqual(['le', 'route']);
  });

  it('grafana - every panel query names metrics and labels the code really exports', async () => {
    const hosts = createHostMetrics({ hostId: 'NTEST', lattice: 'test' });
    const gateway = createGatewayMetrics('test');
    const names = await exported([hosts.registry, gateway.registry]);
    expect(names.has('trellis_invocations_total')).toBe(true);
    const panels = allPanels(dashboard.panels);
    const queries = panels.filter((p) => p.type !== 'row').flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(queries.length).toBeGreaterThan(20);
    for (const p of panels.filter((p) => p.type !== 'row')) expect(p.targets?.length, `panel "${p.title}" has no query`).toBeGreaterThan(0);
    const problems: string[] = [];
    const used = new Set<string>();
    for (const { panel, expr } of queries) {
      const { metrics, matchers, grouping } = parsePromQL(expr);
      if (metrics.length === 0) problems.push(`${panel}: no metric in ${expr}`);
      const known = new Set<string>(SCRAPE_LABELS);
      for (const m of metrics) {
        used.add(m);
        const labels = names.get(m);
        if (!labels) problems.push(`${panel}: ${m} is not exported`);
        else for (const l of labels) known.add(l);
      }
      for (const { metric, label } of matchers) if (!names.get(metric)?.has(label) && !SCRAPE_LABELS.includes(label)) problems.push(`${panel}: ${metric} has no label ${label}`);
      for (const label of grouping) if (!known.has(label)) problems.push(`${panel}: grouping by ${label}, which none of ${metrics.join(', ')} has`);
    }
    for (const v of dashboard.templating.list.filter((v) => v.type === 'query')) {
      const query = typeof v.query === 'string' ? v.query : v.query.query;
      const m = /^label_values\(([a-zA-Z_:][\w:]*)(?:\{[^}]*\})?,\s*(\w+)\)$/.exec(query);
      if (!m) problems.push(`variable ${v.name}: not a label_values query: ${query}`);
      else if (!names.get(m[1]!)?.has(m[2]!)) problems.push(`variable ${v.name}: ${m[1]} has no label ${m[2]}`);
    }
    expect(problems).toEqual([]);
    // The metrics the issue asks for are on the dashboard.
    for (const m of ['trellis_invocations_total', 'trellis_invocation_duration_seconds_bucket', 'trellis_cold_starts_total', 'trellis_actor_instances', 'trellis_invocation_queue_wait_seconds_bucket', 'trellis_actor_pool_saturation', 'trellis_gateway_requests_total', 'trellis_nats_reconnects_total']) {
      expect(used.has(m), m).toBe(true);
    }
  });

  it('grafana - panel ids are unique and panels sit inside the 24-column grid', () => {
    const panels = allPanels(dashboard.panels);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of panels) expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    expect(dashboard.uid).toBe('trellis-lattice');
  });

  it('prometheus - the scrape example is valid YAML scraping hosts and the gateway on /metrics', () => {
    const config = parse(readFileSync(new URL('../deploy/prometheus.yml', import.meta.url), 'utf8')) as { scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[] };
    expect(config.scrape_configs.map((c) => c.job_name)).toEqual(['trellis-hosts', 'trellis-gateway']);
    for (const c of config.scrape_configs) {
      expect(c.metrics_path).toBe('/metrics');
      expect(c.static_configs[0]!.targets.length).toBeGreaterThan(0);
    }
  });
});
