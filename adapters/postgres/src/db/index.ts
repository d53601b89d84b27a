export type {
  CopyValue,
  QueryResult,
  SqlDatabase,
  SqlDatabaseKind,
  SqlExecutor,
  SqlTransaction,
} from './types.js';
export {
  SqlError,
  isSqlError,
  translateSqlError,
  type SqlErrorCode,
  type SqlErrorDetails,
} from './errors.js';
export { openDatabase, validateOpenDatabaseOptions, type OpenDatabaseOptions } from './open.js';
export { openPglite, type PgliteDatabaseOptions } from './pglite.js';
export { openPostgres, type PostgresDatabaseOptions } from './postgres.js';
export { migrate, type Migration, type MigrateOptions, type MigrateResult } from './migrate.js';
export { tableVacuum, type TableVacuum, type TableVacuumOptions } from './vacuum.js';
