/** Row-count normalisation shared by both engines. */

/**
 * Rows returned, or rows changed when nothing is returned. Both drivers report 0 changed rows for
 * a SELECT and the changed count for DML (`affectedRows` in PGlite, `rowCount` in pg), so the
 * larger of the two numbers is right in every case.
 */
export function rowCountOf(rows: readonly unknown[], changed: number | null | undefined): number {
  return Math.max(rows.length, changed ?? 0);
}
