/**
 * `node --import ./scripts/lib/fast-imports.ts …`: the CLI's faster package resolution
 * (package-scopes.ts) for processes that do not start through scripts/baton.ts, such as
 * the test runner's files, each of which loads the database layer.
 */
import { resolvePackageFilesFast } from './package-scopes.ts';

resolvePackageFilesFast();
