/**
 * The `bulwark dlq` commands as functions of (argv, io): the command line is checked in full
 * before any backend is opened, so a typo costs nothing and touches nothing.
 */
import {
  deadLetters,
  type DeadLetterOps,
  type QueueBackend,
  type ReplayOptions,
} from '@bulwark/messaging';
import { encodeDeadLetterCursor } from '@bulwark/messaging/admin';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, isUsageError, UsageError } from '../errors.js';
import { COMMAND_HELP, DLQ_HELP } from '../help.js';
import type { CliIo } from '../io.js';
import { checkNamespace, targetOf, URL_HELP } from '../open-backend.js';
import {
  action,
  cursor,
  filterOf,
  flag,
  integer,
  isDlqCommand,
  isEmptyFilter,
  noPositionals,
  parseCommand,
  positive,
  text,
  time,
  type DlqCommandName,
  type Parsed,
  type Values,
} from './args.js';
import {
  formatAudit,
  formatLetter,
  formatList,
  formatPurge,
  formatReplay,
  formatSummary,
} from './format.js';

interface Context {
  readonly ops: DeadLetterOps;
  readonly backend: QueueBackend;
  readonly io: CliIo;
}

/** A checked command, ready to run against a backend; returns what to print. */
type Prepared = (ctx: Context) => Promise<{ json: unknown; human: string }>;

/** `bulwark dlq ...`: returns the exit code. */
export async function runDlq(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr(DLQ_HELP);
    return EXIT_USAGE;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout(DLQ_HELP);
    return EXIT_OK;
  }
  try {
    if (!isDlqCommand(name)) {
      throw new UsageError(
        `unknown command "dlq ${name}"; the commands are list, show, summary, replay, purge, audit`,
      );
    }
    const parsed = parseCommand(name, rest);
    if (flag(parsed.values, 'help')) {
      io.stdout(COMMAND_HELP[name]);
      return EXIT_OK;
    }
    const prepared = await prepare(name, parsed, io);
    const url = text(parsed.values, 'url') ?? io.env.BULWARK_QUEUE_URL;
    if (url === undefined || url === '') {
      throw new UsageError(`no backend: pass --url or set BULWARK_QUEUE_URL to ${URL_HELP}`);
    }
    const schema = text(parsed.values, 'schema');
    const prefix = text(parsed.values, 'prefix');
    const namespace = {
      ...(schema === undefined ? {} : { schema }),
      ...(prefix === undefined ? {} : { prefix }),
    };
    checkNamespace(targetOf(url), namespace);
    const opened = await io.openBackend(url, namespace);
    let output: { json: unknown; human: string };
    try {
      const ops = deadLetters({
        backend: opened.backend,
        ...(io.clock === undefined ? {} : { clock: io.clock }),
      });
      output = await prepared({ ops, backend: opened.backend, io });
    } finally {
      await opened.close();
    }
    io.stdout(
      flag(parsed.values, 'json') ? `${JSON.stringify(output.json, null, 2)}\n` : output.human,
    );
    return EXIT_OK;
  } catch (error) {
    return report(error, io);
  }
}

function report(error: unknown, io: CliIo): number {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : '';
  io.stderr(`bulwark: ${message}\n${cause === '' ? '' : `  cause: ${cause}\n`}`);
  return isUsageError(error) ? EXIT_USAGE : EXIT_FAILURE;
}

async function prepare(name: DlqCommandName, parsed: Parsed, io: CliIo): Promise<Prepared> {
  const { values, positionals } = parsed;
  switch (name) {
    case 'list': {
      noPositionals(name, positionals);
      const filter = filterOf(values);
      const limit = integer(values, 'limit', 1_000) ?? 100;
      const after = cursor(values);
      return async ({ ops }) => {
        const page = await ops.list(filter, after === undefined ? { limit } : { limit, after });
        const next = page.next === undefined ? undefined : encodeDeadLetterCursor(page.next);
        return {
          json: next === undefined ? { items: page.items } : { items: page.items, next },
          human: formatList(page.items, next),
        };
      };
    }
    case 'show': {
      const [id, ...extra] = positionals;
      if (id === undefined || extra.length > 0) {
        throw new UsageError('bulwark dlq show takes exactly one dead letter id');
      }
      return async ({ ops }) => {
        const letter = await ops.show(id);
        return { json: letter, human: formatLetter(letter) };
      };
    }
    case 'summary': {
      noPositionals(name, positionals);
      const filter = filterOf(values);
      return async ({ backend }) => {
        const summary = await backend.summarizeDeadLetters(filter);
        return { json: summary, human: formatSummary(summary) };
      };
    }
    case 'replay':
      return prepareReplay(values, positionals, io);
    case 'purge': {
      noPositionals(name, positionals);
      const filter = filterOf(values);
      const dryRun = flag(values, 'dry-run');
      const all = flag(values, 'all');
      if (isEmptyFilter(filter) && !all) {
        throw new UsageError(
          'purge needs a filter (--queue, --error-code, --id, …) or --all for every dead letter',
        );
      }
      if (!dryRun && !flag(values, 'yes')) {
        throw new UsageError(
          'purge deletes dead letters for good: add --yes to confirm, or --dry-run to preview',
        );
      }
      const actor = actorOf(values, io);
      return async ({ ops }) => {
        const result = await ops.purge({
          filter,
          all,
          dryRun,
          ...(actor === undefined ? {} : { actor }),
        });
        return { json: result, human: formatPurge(result) };
      };
    }
    case 'audit': {
      noPositionals(name, positionals);
      const from = time(values, 'from');
      const to = time(values, 'to');
      const act = action(values);
      const limit = integer(values, 'limit', 1_000) ?? 100;
      return async ({ ops }) => {
        const entries = await ops.audit({
          limit,
          ...(from === undefined ? {} : { from }),
          ...(to === undefined ? {} : { to }),
          ...(act === undefined ? {} : { action: act }),
        });
        return { json: { items: entries }, human: formatAudit(entries) };
      };
    }
  }
}

async function prepareReplay(
  values: Values,
  positionals: readonly string[],
  io: CliIo,
): Promise<Prepared> {
  noPositionals('replay', positionals);
  const filter = filterOf(values);
  if (isEmptyFilter(filter) && !flag(values, 'all')) {
    throw new UsageError(
      'replay needs a filter (--queue, --error-code, --id, …) or --all for every dead letter',
    );
  }
  const limit = integer(values, 'limit');
  const ratePerSecond = positive(values, 'rate');
  const toQueue = text(values, 'to-queue');
  const payloadText = text(values, 'payload');
  const payload = payloadText === undefined ? undefined : await readPayload(payloadText, io);
  const actor = actorOf(values, io);
  const options: ReplayOptions = {
    filter,
    dryRun: flag(values, 'dry-run'),
    ...(limit === undefined ? {} : { limit }),
    ...(ratePerSecond === undefined ? {} : { ratePerSecond }),
    ...(toQueue === undefined ? {} : { toQueue }),
    ...(payload === undefined ? {} : { payload: payload.value }),
    ...(actor === undefined ? {} : { actor }),
    ...(io.signal === undefined ? {} : { signal: io.signal }),
  };
  return async ({ ops }) => {
    const result = await ops.replay(options);
    const stopped = io.signal?.aborted === true && !result.dryRun;
    return {
      json: result,
      human: formatReplay(result) + (stopped ? 'stopped early: interrupted\n' : ''),
    };
  };
}

/** `--payload '{"a":1}'` or `--payload @fixed.json`. */
async function readPayload(value: string, io: CliIo): Promise<{ value: unknown }> {
  let source = value;
  if (value.startsWith('@')) {
    const path = value.slice(1);
    try {
      source = await io.readFile(path);
    } catch (error) {
      throw new UsageError(
        `--payload ${value}: cannot read ${path} (${error instanceof Error ? error.message : String(error)})`,
      );
    }
  }
  try {
    return { value: JSON.parse(source) as unknown };
  } catch (error) {
    throw new UsageError(
      `--payload must be JSON (or @file with JSON): ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

function actorOf(values: Values, io: CliIo): string | undefined {
  const given = text(values, 'actor');
  if (given !== undefined) return given;
  const user = io.env.USER ?? io.env.USERNAME;
  return user === undefined || user === '' ? undefined : user;
}
