/**
 * What every verb of the CLI shares: its exit codes, the one-line errors, and option
 * parsing that refuses what it does not know (one line of usage, exit 2).
 *
 * Exit codes: 0 success, 1 failure (a run that failed or was cancelled, an API error),
 * 2 usage (unknown option, missing argument, input that is not JSON), 3 the API could
 * not be reached.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseJson } from './json-error.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const;

/** An error the CLI reports as one line, with its exit code. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: number;
  /** A usage error also prints the verb's one-line usage. */
  readonly usage: string | undefined;
  constructor(message: string, exitCode: number = EXIT.failed, usage?: string) {
    super(message);
    this.exitCode = exitCode;
    this.usage = usage;
  }
}

export const usageError = (message: string, usage: string) => new CliError(message, EXIT.usage, usage);

/** A verb of the CLI: its one-line usage, its --help text, and what it does. */
export interface Command {
  usage: string;
  help: string;
  main(argv: string[]): Promise<number | void>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `util.parseArgs`, strict: an unknown option or a missing value is a usage error
 * (exit 2) that names it; positionals are counted against `min`/`max`.
 */
export function parseCommand<O extends Options>(argv: string[], options: O, usage: string, positionals: { min?: number; max?: number } = {}) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS')) throw usageError(cleanParseError(e.message), usage);
    throw err;
  }
  const count = parsed.positionals.length;
  if (positionals.min !== undefined && count < positionals.min) throw usageError('missing argument', usage);
  if (positionals.max !== undefined && count > positionals.max) {
    throw usageError(`unexpected argument "${parsed.positionals[positionals.max]}"`, usage);
  }
  return parsed;
}

/** Node's parseArgs messages carry advice for programmers ("To specify a positional…"); keep the first sentence. */
function cleanParseError(message: string): string {
  return message.split('. ')[0].replace(/\.$/, '');
}

/** Parses JSON given on the command line or in a file; a mistake names where it is (exit 2). */
export function parseJsonArg(text: string, what: string): unknown {
  try {
    return parseJson(text);
  } catch (err) {
    throw new CliError(`${what} is not valid JSON: ${(err as Error).message}`, EXIT.usage);
  }
}

/** A whole number option (e.g. `--from 2`), or a usage error naming it. */
export function intOption(value: string | undefined, name: string, usage: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,9}$/.test(value)) throw usageError(`${name} must be a whole number, not "${value}"`, usage);
  return Number(value);
}
