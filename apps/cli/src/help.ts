/** Help texts. Kept next to each other so `--help` and the README stay in step. */
import type { DlqCommandName } from './dlq/args.js';

export const MAIN_HELP = `bulwark: operate Bulwark services from the command line

Usage:
  bulwark dlq <command> [flags]   dead letters: list, show, summary, replay, purge, audit
  bulwark --help                  this text

Run "bulwark dlq --help" for the dead letter commands.
`;

const BACKEND = `Backend:
  --url <url>          the queue backend; default $BULWARK_QUEUE_URL. One of
                         postgres://… or postgresql://…   PostgreSQL
                         <folder> or pglite:<folder>      PGlite (the folder must exist)
                         redis://…  amqp://…  nats://…    Redis, RabbitMQ, NATS JetStream
  --schema <name>      PostgreSQL/PGlite: schema of the queue tables (default bulwark_messaging)
  --prefix <name>      Redis/RabbitMQ/NATS: the adapter's prefix for keys, queues or streams
`;

const FILTERS = `Filters (each narrows; none matches every dead letter):
  --queue <name>       source queue
  --type <type>        message type
  --error-code <code>  code of the error that dead-lettered the message
  --from <time>        dead at or after: ISO 8601 with an offset, a UTC date, or epoch ms
  --to <time>          dead before
  --text <text>        case-insensitive text in the type, the payload or an error message
  --id <id>            this dead letter; repeat for several
`;

const OUTPUT = `Output:
  --json               print the result as JSON on stdout (errors stay on stderr)
  -h, --help           this text

Exit codes: 0 done, 1 failed, 2 bad command line.
`;

export const DLQ_HELP = `Usage: bulwark dlq <command> [flags]

Commands:
  list                 list and search dead letters, oldest first, a page at a time
  show <id>            one dead letter: headers, every attempt's error, the payload
  summary              how many dead letters match, by source queue
  replay               put matching dead letters back on their queue (preview with --dry-run)
  purge                delete matching dead letters for good (needs --yes)
  audit                who replayed or purged what, newest first

${BACKEND}
${FILTERS}
${OUTPUT}
Run "bulwark dlq <command> --help" for a command's own flags.
`;

const ACTOR = `  --actor <name>       who is asking, for the audit log (default $USER)\n`;

export const COMMAND_HELP: Readonly<Record<DlqCommandName, string>> = {
  list: `Usage: bulwark dlq list [filters] [--limit <n>] [--after <cursor>]

  --limit <n>          page size, 1 to 1000 (default 100)
  --after <cursor>     the next page: the cursor the previous page printed

${FILTERS}
${BACKEND}
${OUTPUT}`,
  show: `Usage: bulwark dlq show <id>

${BACKEND}
${OUTPUT}`,
  summary: `Usage: bulwark dlq summary [filters]

${FILTERS}
${BACKEND}
${OUTPUT}`,
  replay: `Usage: bulwark dlq replay [filters | --all] [flags]

Each replayed message gets a new id, keeps its type, headers and idempotency key, and starts
again at attempt 1; the dead letter is removed in the same step.

  --dry-run            show what would be replayed; change nothing (recorded in the audit log)
  --all                with no filter: replay every dead letter
  --limit <n>          replay at most n
  --rate <n>           at most n messages per second
  --payload <json>     replace the payload (the filter must match exactly one: use --id);
                       @file reads the JSON from a file
  --to-queue <name>    replay into this queue instead of each message's source queue
${ACTOR}
${FILTERS}
${BACKEND}
${OUTPUT}`,
  purge: `Usage: bulwark dlq purge [filters | --all] (--yes | --dry-run)

  --dry-run            count what would be deleted; change nothing (recorded in the audit log)
  -y, --yes            really delete (required unless --dry-run)
  --all                with no filter: purge every dead letter
${ACTOR}
${FILTERS}
${BACKEND}
${OUTPUT}`,
  audit: `Usage: bulwark dlq audit [--from <time>] [--to <time>] [--action replay|purge] [--limit <n>]

  --from, --to <time>  entries in [from, to): ISO 8601 with an offset, a UTC date, or epoch ms
  --action <action>    replay or purge
  --limit <n>          at most n entries, 1 to 1000 (default 100)

${BACKEND}
${OUTPUT}`,
};
