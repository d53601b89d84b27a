/** The 400 and 404 problems the services answer with, shaped like the plugin's own. */
import { ProblemError, ProblemTypes } from '@bulwark/http/fastify';

/** 400 naming the field, like a schema validation failure (`errors: [{ field, in, message }]`). */
export function invalidField(
  field: string,
  where: 'querystring' | 'params',
  message: string,
  code = 'VALIDATION_FAILED',
): ProblemError {
  return new ProblemError({
    status: 400,
    type: ProblemTypes.validation,
    title: 'Validation Failed',
    detail: `The request is invalid: ${where} /${field} ${message}.`,
    code,
    retryable: false,
    extensions: { errors: [{ field: `/${field}`, in: where, message }] },
  });
}

export function notFound(what: string, id: number, code: string): ProblemError {
  return new ProblemError({
    status: 404,
    type: ProblemTypes.notFound,
    title: 'Not Found',
    detail: `${what} ${id} does not exist.`,
    code,
    retryable: false,
  });
}
