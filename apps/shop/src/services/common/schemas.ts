/**
 * JSON schemas for the shared inputs. Fastify validates (and coerces) with them, so a
 * non-numeric or out-of-range id is a 400 naming the field before a handler runs.
 */

/** Ids are positive int4 values: larger numbers would be a database error, not a 404. */
export const MAX_ID = 2_147_483_647;

export const idSchema = { type: 'integer', minimum: 1, maximum: MAX_ID } as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: idSchema },
} as const;

export function limitSchema(defaultLimit: number, maxLimit: number) {
  return { type: 'integer', minimum: 1, maximum: maxLimit, default: defaultLimit } as const;
}

export interface IdParams {
  id: number;
}
