/** argv (without `node` and the script) to a command; returns the exit code. */
import { EXIT_OK, EXIT_USAGE } from './errors.js';
import { runDlq } from './dlq/commands.js';
import { MAIN_HELP } from './help.js';
import type { CliIo } from './io.js';

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h' || first === 'help') {
    io.stdout(MAIN_HELP);
    return EXIT_OK;
  }
  if (first === 'dlq') return runDlq(rest, io);
  io.stderr(
    first === undefined ? MAIN_HELP : `bulwark: unknown command "${first}"\n\n${MAIN_HELP}`,
  );
  return EXIT_USAGE;
}
