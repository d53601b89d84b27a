/**
 * The dead letter admin API as a Fastify plugin. Only Fastify's types are imported: the app that
 * registers the plugin brings Fastify, so messaging has no run-time dependency on it. The plugin
 * is not wrapped with fastify-plugin on purpose: its auth hook and error handler stay inside its
 * own encapsulation context (and its prefix) and never touch the rest of the app.
 */
import { hasCode, isInvalidOptionsError } from '@bulwark/core';
import type {
  FastifyError,
  FastifyInstance,
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
} from 'fastify';
import type { DeadLetterFilter } from '../backend.js';
import { deadLetters, type ReplayOptions, type ReplayResult } from '../dead-letters.js';
import { bearerChecker } from './auth.js';
import { encodeDeadLetterCursor } from './cursor.js';
import {
  parseAuditQuery,
  parseListQuery,
  parsePurgeBody,
  parseReplayBody,
  parseSingleReplayBody,
  parseSummaryQuery,
  type ReplayInput,
} from './input.js';
import { resolveAdminOptions, type DeadLetterAdminOptions } from './options.js';
import {
  ADMIN_PROBLEM_CONTENT_TYPE,
  AdminInputError,
  AdminProblemTypes,
  problem,
  type AdminFieldError,
  type AdminProblem,
} from './problem.js';

const REALM = 'bulwark-admin';

/**
 * Makes the plugin; options are checked now. Register it under a prefix:
 * `app.register(deadLetterAdmin({ backend, token }), { prefix: '/admin/dlq' })`.
 */
export function deadLetterAdmin(options: DeadLetterAdminOptions): FastifyPluginCallback {
  const o = resolveAdminOptions(options);
  const ops = deadLetters({ backend: o.backend, clock: o.clock });
  const authorize = bearerChecker(o.token);

  async function replay(
    input: Omit<ReplayInput, 'filter'>,
    filter: DeadLetterFilter,
    reply: FastifyReply,
  ): Promise<ReplayResult> {
    const base: ReplayOptions = {
      filter,
      dryRun: input.dryRun,
      actor: o.actor,
      ...(input.limit === undefined ? {} : { limit: input.limit }),
      ...(input.payload === undefined ? {} : { payload: input.payload.value }),
      ...(input.toQueue === undefined ? {} : { toQueue: input.toQueue }),
    };
    if (input.ratePerSecond === undefined || input.dryRun) return ops.replay(base);
    await refuseLongReplay(filter, input.limit, input.ratePerSecond);
    // A rate-limited replay holds the request open; a client that goes away stops it between
    // messages (what was replayed stays replayed, and the audit entry says so).
    const controller = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) controller.abort();
    };
    reply.raw.once('close', onClose);
    try {
      return await ops.replay({
        ...base,
        ratePerSecond: input.ratePerSecond,
        signal: controller.signal,
      });
    } finally {
      reply.raw.off('close', onClose);
    }
  }

  async function refuseLongReplay(
    filter: DeadLetterFilter,
    limit: number | undefined,
    ratePerSecond: number,
  ): Promise<void> {
    const { total } = await o.backend.summarizeDeadLetters(filter);
    const count = Math.min(total, limit ?? Infinity);
    const ms = (Math.max(count, 1) - 1) * (1_000 / ratePerSecond);
    if (ms <= o.maxReplayMs) return;
    const fits = Math.floor((o.maxReplayMs * ratePerSecond) / 1_000) + 1;
    throw new AdminInputError([
      {
        field: '/limit',
        in: 'body',
        message: `replaying ${count} at ${ratePerSecond}/s takes ${Math.ceil(ms / 1_000)} s, longer than this API holds a request (${o.maxReplayMs} ms); pass limit <= ${fits} and repeat`,
      },
    ]);
  }

  return function bulwarkDeadLetterAdmin(app: FastifyInstance, _opts, done) {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      const { status, body } = toAdminProblem(error, request);
      if (status >= 500) request.log.error({ err: error }, 'dead letter admin request failed');
      void reply.code(status).type(ADMIN_PROBLEM_CONTENT_TYPE).send(body);
    });

    // onRequest runs before the body is read: a caller without the token gets nothing else.
    app.addHook('onRequest', (request, reply, next) => {
      const verdict = authorize(request.headers.authorization);
      if (verdict === 'ok') {
        next();
        return;
      }
      const missing = verdict === 'missing';
      void reply
        .code(401)
        .header(
          'www-authenticate',
          missing ? `Bearer realm="${REALM}"` : `Bearer realm="${REALM}", error="invalid_token"`,
        )
        .type(ADMIN_PROBLEM_CONTENT_TYPE)
        .send(
          problem(
            401,
            AdminProblemTypes.unauthorized,
            'UNAUTHORIZED',
            missing
              ? 'send the admin token as "Authorization: Bearer <token>"'
              : 'the bearer token is not valid',
            request,
          ),
        );
    });

    app.get('/dead-letters', async request => {
      const { filter, limit, after } = parseListQuery(request.query);
      const page = await ops.list(filter, after === undefined ? { limit } : { limit, after });
      return page.next === undefined
        ? { items: page.items }
        : { items: page.items, next: encodeDeadLetterCursor(page.next) };
    });

    app.get<{ Params: { id: string } }>('/dead-letters/:id', request =>
      ops.show(request.params.id),
    );

    app.get('/summary', request =>
      o.backend.summarizeDeadLetters(parseSummaryQuery(request.query)),
    );

    app.post('/replay', (request, reply) => {
      const input = parseReplayBody(request.body);
      return replay(input, input.filter, reply);
    });

    app.post<{ Params: { id: string } }>('/dead-letters/:id/replay', async (request, reply) => {
      const input = parseSingleReplayBody(request.body);
      await ops.show(request.params.id); // 404 before anything is audited
      return replay(input, { ids: [request.params.id] }, reply);
    });

    app.post('/purge', request => {
      const input = parsePurgeBody(request.body);
      return ops.purge({ ...input, actor: o.actor });
    });

    app.get('/audit', async request => ({
      items: await ops.audit(parseAuditQuery(request.query)),
    }));

    done();
  };
}

function toAdminProblem(
  error: FastifyError,
  request: FastifyRequest,
): { status: number; body: AdminProblem } {
  const bad = (detail: string, errors?: readonly AdminFieldError[]) => ({
    status: 400,
    body: problem(400, AdminProblemTypes.validation, 'VALIDATION', detail, request, errors),
  });
  if (error instanceof AdminInputError) return bad(error.message, error.errors);
  // The dead letter operations check their options too (a payload for a filter that matches
  // several, a purge of everything without `all`): that is still the client's input.
  if (isInvalidOptionsError(error)) return bad(error.message);
  if (hasCode(error, 'DEAD_LETTER_NOT_FOUND')) {
    return {
      status: 404,
      body: problem(
        404,
        AdminProblemTypes.notFound,
        'DEAD_LETTER_NOT_FOUND',
        error.message,
        request,
      ),
    };
  }
  const parse = PARSE_ERRORS[error.code];
  if (parse !== undefined) {
    return {
      status: parse.status,
      body: problem(parse.status, parse.type, error.code, error.message, request),
    };
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return bad(error.message);
  }
  return {
    status: 500,
    body: problem(
      500,
      AdminProblemTypes.internal,
      'INTERNAL',
      'the dead letter operation failed; the server log has the cause',
      request,
    ),
  };
}

/** Fastify's body parsing errors, by code. */
const PARSE_ERRORS: Readonly<Record<string, { status: number; type: string }>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, type: AdminProblemTypes.malformedBody },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, type: AdminProblemTypes.malformedBody },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, type: AdminProblemTypes.malformedBody },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, type: AdminProblemTypes.unsupportedMediaType },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, type: AdminProblemTypes.payloadTooLarge },
};
