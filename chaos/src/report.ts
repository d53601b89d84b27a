/** The chaos report: one table per scenario, a summary table, as Markdown and as JSON. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ScenarioResult } from './scenario.js';

export interface ChaosReport {
  date: string;
  elapsedMs: number;
  environment: { node: string; platform: string };
  config: {
    requests: number;
    concurrency: number;
    overviewBudgetMs: number;
    /** The gateway's timings were stretched by this factor. */
    timeScale: number;
    breakerOpenMs: number;
    attemptTimeoutMs: Record<string, number>;
    marginMs: number;
    seed: Record<string, number>;
  };
  scenarios: ScenarioResult[];
  pass: boolean;
}

const row = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;

function partsCell(result: ScenarioResult): string {
  return Object.entries(result.counts.parts)
    .map(([part, statuses]) => {
      const shown = Object.entries(statuses)
        .sort((a, b) => b[1] - a[1])
        .map(([status, n]) => `${status} ${n}`)
        .join(', ');
      return `${part}: ${shown || '–'}`;
    })
    .join('<br>');
}

/** The per-scenario table (the one printed while the matrix runs). */
export function scenarioTable(result: ScenarioResult): string {
  const c = result.counts;
  const recovery =
    result.recovery === null
      ? '–'
      : `${result.recovery.recovered ? 'yes' : 'NO'} (${result.recovery.polls} polls, ${result.recovery.elapsedMs} ms)`;
  const lines = [
    `#### ${result.id}: ${result.faultLabel}${result.critical ? ' (critical)' : ''} — ${result.pass ? 'PASS' : 'FAIL'}`,
    '',
    row([
      'requests',
      'ok',
      'degraded',
      'errors',
      'p50 ms',
      'p99 ms',
      'max ms',
      'statuses',
      'recovered',
    ]),
    row(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---', '---']),
    row([
      c.requests,
      c.ok,
      c.degraded,
      c.errors,
      result.latency.p50Ms,
      result.latency.p99Ms,
      result.latency.maxMs,
      Object.entries(c.byStatus)
        .map(([s, n]) => `${s}×${n}`)
        .join(' '),
      recovery,
    ]),
    '',
    `Parts: ${partsCell(result).replace(/<br>/g, '; ')}`,
    '',
    ...result.checks.map(ch => `- ${ch.pass ? 'PASS' : 'FAIL'} ${ch.name}: ${ch.detail}`),
  ];
  return lines.join('\n');
}

/** The whole report as Markdown: summary first, then each scenario. */
export function toMarkdown(report: ChaosReport): string {
  const cfg = report.config;
  const summary = [
    row([
      'scenario',
      'requests',
      'ok',
      'degraded',
      'errors',
      'p50 ms',
      'p99 ms',
      'recovered',
      'result',
    ]),
    row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---', '---']),
    ...report.scenarios.map(r =>
      row([
        r.id,
        r.counts.requests,
        r.counts.ok,
        r.counts.degraded,
        r.counts.errors,
        r.latency.p50Ms,
        r.latency.p99Ms,
        r.recovery === null ? '–' : r.recovery.recovered ? `${r.recovery.elapsedMs} ms` : 'NO',
        r.pass ? 'PASS' : 'FAIL',
      ]),
    ),
  ];
  return [
    '# Chaos report: the shop gateway under upstream faults',
    '',
    `${report.date}, ${report.environment.node} on ${report.environment.platform}, ` +
      `${Math.round(report.elapsedMs / 1000)} s. Each scenario: ${cfg.requests} overview requests ` +
      `at concurrency ${cfg.concurrency}, the gateway's timings ×${cfg.timeScale}: overview budget ` +
      `${cfg.overviewBudgetMs} ms (margin ` +
      `${cfg.marginMs} ms), breakers open for ${cfg.breakerOpenMs} ms, per-attempt limits ` +
      `${JSON.stringify(cfg.attemptTimeoutMs)} ms; seed ${JSON.stringify(cfg.seed)}.`,
    '',
    ...(report.scenarios[0]?.id === 'healthy' && !report.scenarios[0].pass
      ? [
          '**The healthy baseline failed**: the stack does not carry this load on this machine ' +
            '(in-process PGlite is the bottleneck), so fault scenarios are inconclusive. Lower ' +
            '`--concurrency` or raise `--time-scale`.',
          '',
        ]
      : []),
    '',
    '"ok" is 200 with `meta.status: complete`, "degraded" is 200 with `meta.status: degraded`, ' +
      '"errors" is everything else (503/504 problems, hangs, network failures).',
    '',
    `**Overall: ${report.pass ? 'PASS' : 'FAIL'}** (${report.scenarios.filter(s => s.pass).length}/${report.scenarios.length} scenarios pass)`,
    '',
    ...summary,
    '',
    '## Scenarios',
    '',
    ...report.scenarios.map(r => `${scenarioTable(r)}\n`),
  ].join('\n');
}

/** Writes `chaos-<stamp>.json` (git-ignored), `latest.json` and `latest.md` under `dir`. */
export async function writeReport(dir: string, report: ChaosReport): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const stamp = report.date.replace(/:/g, '').replace(/\.\d+Z$/, 'Z');
  const json = `${JSON.stringify(report, null, 2)}\n`;
  const files = [
    join(dir, `chaos-${stamp}.json`),
    join(dir, 'latest.json'),
    join(dir, 'latest.md'),
  ];
  await writeFile(files[0] as string, json);
  await writeFile(files[1] as string, json);
  await writeFile(files[2] as string, toMarkdown(report));
  return files;
}
