/**
 * SQL expressions for the deterministic demo data. Services own separate schemas, so values that
 * two services must agree on (a product's price is both the catalog's price and an order line's
 * unit price) come from one formula here. The multipliers are primes: they scatter consecutive
 * ids without a random number generator, and the same id always gives the same value.
 */

/** The price in cents of product `id` (an int8 SQL expression): 1.99 to 499.99. */
export function productPriceSql(id: string): string {
  return `(199 + ((${id})::int8 * 7919) % 49801)::int`;
}

/** Picks an element of a text array literal by an int8 SQL expression. */
export function pickSql(values: readonly string[], index: string): string {
  const literal = values.map(v => `'${v.replace(/'/g, "''")}'`).join(',');
  return `(array[${literal}])[1 + ((${index}) % ${values.length})]`;
}
