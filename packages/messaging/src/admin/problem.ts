/**
 * Problem documents (RFC 9457) for the admin API. The shape and the `urn:bulwark:problem:*` types
 * match `@bulwark/http`'s, so a client that handles one handles both; they are repeated here
 * because messaging must not depend on the HTTP package (or on Fastify at run time).
 */

export const ADMIN_PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The problem types the admin API sends. Stable: clients may switch on them. */
export const AdminProblemTypes = {
  unauthorized: 'urn:bulwark:problem:unauthorized',
  validation: 'urn:bulwark:problem:validation',
  malformedBody: 'urn:bulwark:problem:malformed-body',
  unsupportedMediaType: 'urn:bulwark:problem:unsupported-media-type',
  payloadTooLarge: 'urn:bulwark:problem:payload-too-large',
  notFound: 'urn:bulwark:problem:not-found',
  internal: 'urn:bulwark:problem:internal',
} as const;

/** One failing input field. */
export interface AdminFieldError {
  /** JSON pointer into the part named by `in` (`/filter/from`); a query parameter's name. */
  field: string;
  /** `querystring`, `body`, `params` or `headers`. */
  in: string;
  message: string;
}

export interface AdminProblem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  requestId: string;
  retryable: boolean;
  errors?: AdminFieldError[];
}

/** Bad input, found before anything ran; becomes a 400 naming every failing field. */
export class AdminInputError extends Error {
  readonly errors: readonly AdminFieldError[];
  constructor(errors: readonly AdminFieldError[]) {
    super(errors.map(e => `${e.in} ${e.field}: ${e.message}`).join('; '));
    this.errors = errors;
  }
  override get name(): string {
    return 'AdminInputError';
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
};

export function problem(
  status: number,
  type: string,
  code: string,
  detail: string,
  where: { url: string; id: string },
  errors?: readonly AdminFieldError[],
): AdminProblem {
  const query = where.url.indexOf('?');
  return {
    type,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    instance: query === -1 ? where.url : where.url.slice(0, query),
    code,
    requestId: where.id,
    retryable: status >= 500,
    ...(errors === undefined ? {} : { errors: [...errors] }),
  };
}
