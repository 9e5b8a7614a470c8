import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  Res,
  Sse,
  type MessageEvent,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { EMPTY, type Observable } from 'rxjs';
import { CurrentPrincipal, RequireScopes } from '../auth/auth.decorators.js';
import { CredentialWatch } from '../auth/credential-watch.service.js';
import type { Principal } from '../auth/principal.js';
import { uuidParam } from '../common/pipes.js';
import { ApiErrors, ApiEventStream } from '../common/api-docs.js';
import { NO_CHARGES, chargesOfNewJob } from '../ledger/job-charges.js';
import { MAX_TENSOR_BYTES, NPY_MEDIA_TYPE } from '@gpumesh/protocol';
import { DomainError } from '../common/domain-error.js';
import { npyStream, wantsJson } from '../tensors/npy-stream.js';
import { JobEventStream } from './job-event-stream.js';
import { parseLastEventId } from '../events/sse/sse-resume.js';
import { JobsService, MAX_BATCH_SUBMIT, type JobOutput } from './jobs.service.js';
import {
  BatchSubmitResponseDto,
  DryRunDto,
  JobDetailDto,
  JobDto,
  JobPageDto,
  JobResultDto,
  ListJobsQueryDto,
  mapJob,
  mapJobDetail,
  TensorDto,
} from './dto/job.dto.js';

@ApiTags('jobs')
@ApiBearerAuth()
@Controller('v1/jobs')
export class JobsController {
  constructor(
    private readonly jobs: JobsService,
    private readonly stream: JobEventStream,
    private readonly credentials: CredentialWatch,
  ) {}

  @Post()
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary: 'Submit a job: its cost is computed from the spec and reserved from your balance',
  })
  @ApiBody({ schema: { $ref: '#/components/schemas/JobSubmission' } })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'retries with the same key return the first job',
  })
  @ApiResponse({ status: 201, type: JobDto })
  @ApiResponse({
    status: 200,
    type: JobDto,
    description: 'an earlier submission with the same Idempotency-Key',
  })
  @ApiErrors({
    402: 'INSUFFICIENT_BALANCE (details: required, available) or SPENDING_CAP_EXCEEDED',
    403: 'FORBIDDEN: the key lacks jobs:write',
    404: 'ARTIFACT_NOT_FOUND: the model is not yours and not public',
    409: 'IDEMPOTENCY_CONFLICT (the key was used for another spec) or ESCROW_UNLOCK_PENDING',
  })
  async submit(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<JobDto> {
    const { job, created } = await this.jobs.submit(principal, body, idempotencyKey);
    void reply.status(created ? 201 : 200);
    return mapJob(job, await this.jobs.charges(job, created));
  }

  @Post('batch')
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary: `Submit up to ${MAX_BATCH_SUBMIT} jobs in one request: every spec is validated before any is stored; each job then succeeds or fails on its own`,
  })
  @ApiBody({ schema: { $ref: '#/components/schemas/BatchJobSubmission' } })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'job i of the batch uses `<key>.<i>`: a retried batch returns the jobs it stored',
  })
  @ApiResponse({ status: 201, type: BatchSubmitResponseDto, description: 'at least one job was stored' })
  @ApiResponse({
    status: 200,
    type: BatchSubmitResponseDto,
    description: 'no job was stored (all were refused or earlier submissions)',
  })
  @ApiErrors({
    400: 'VALIDATION_FAILED: a spec is invalid (the message names jobs[i]); nothing was stored',
    403: 'FORBIDDEN: the key lacks jobs:write',
    404: 'ARTIFACT_NOT_FOUND: a job names a model that is not yours and not public',
    409: 'ESCROW_UNLOCK_PENDING: an escrow unlock is pending',
  })
  async submitMany(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<BatchSubmitResponseDto> {
    const items = await this.jobs.submitMany(principal, body, idempotencyKey);
    const created = items.filter((i) => 'created' in i && i.created).length;
    // Jobs stored earlier under the same key may have moved on: the ledger says what they cost.
    const earlier = await this.jobs.chargesOfMany(
      items.flatMap((i) => ('job' in i && !i.created ? [i.job] : [])),
    );
    void reply.status(created > 0 ? 201 : 200);
    return {
      items: items.map((i) =>
        'error' in i
          ? {
              index: i.index,
              error: { code: i.error.code, message: i.error.message, details: i.error.details },
            }
          : {
              index: i.index,
              job: mapJob(i.job, earlier.get(i.job.id) ?? chargesOfNewJob(i.job.cost)),
              created: i.created,
            },
      ),
      created,
      refused: items.filter((i) => 'error' in i).length,
    };
  }

  @Post('dry-run')
  @HttpCode(200)
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary:
      'Price a job and see where it would run, or why no provider matches (every reason, counted) and the cheapest change that would make it placeable',
  })
  @ApiBody({ schema: { $ref: '#/components/schemas/JobSubmission' } })
  @ApiOkResponse({ type: DryRunDto })
  @ApiErrors({
    403: 'FORBIDDEN: the key lacks jobs:write',
    404: 'ARTIFACT_NOT_FOUND: the model is not yours and not public',
  })
  async dryRun(@CurrentPrincipal() principal: Principal, @Body() body: unknown): Promise<DryRunDto> {
    return toJson(await this.jobs.dryRun(principal, body)) as unknown as DryRunDto;
  }

  @Get()
  @RequireScopes('jobs:read')
  @ApiOperation({ summary: 'Your jobs, newest first, with cursor pagination and filters' })
  @ApiOkResponse({ type: JobPageDto })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks jobs:read' })
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListJobsQueryDto,
  ): Promise<JobPageDto> {
    const page = await this.jobs.list(principal, query);
    const charges = await this.jobs.chargesOfMany(page.items);
    return {
      items: page.items.map((job) => mapJob(job, charges.get(job.id) ?? NO_CHARGES)),
      nextCursor: page.nextCursor,
    };
  }

  @Get(':id')
  @RequireScopes('jobs:read')
  @ApiOperation({ summary: 'One job' })
  @ApiOkResponse({ type: JobDetailDto })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks jobs:read', 404: 'JOB_NOT_FOUND' })
  async get(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
  ): Promise<JobDetailDto> {
    const job = await this.jobs.get(principal, id);
    return mapJobDetail(job, await this.jobs.charges(job));
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @RequireScopes('jobs:write')
  @ApiOperation({ summary: 'Cancel a job that has not finished; its reservation is released' })
  @ApiOkResponse({ type: JobDto })
  @ApiErrors({
    403: 'FORBIDDEN: the key lacks jobs:write',
    404: 'JOB_NOT_FOUND',
    409: 'ILLEGAL_TRANSITION: the job has already finished',
  })
  async cancel(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
  ): Promise<JobDto> {
    const job = await this.jobs.cancel(principal, id);
    return mapJob(job, await this.jobs.charges(job));
  }

  @Get(':id/result')
  @RequireScopes('jobs:read')
  @ApiOperation({ summary: 'The verified outputs of a completed job' })
  @ApiOkResponse({ type: JobResultDto })
  @ApiErrors({
    403: 'FORBIDDEN: the key lacks jobs:read',
    404: 'JOB_NOT_FOUND',
    409: 'RESULT_NOT_READY: the job has not completed (details.state)',
  })
  async result(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
  ): Promise<JobResultDto> {
    const { job, result, resultHash } = await this.jobs.result(principal, id);
    return { jobId: job.id, resultHash, result };
  }

  @Get(':id/outputs/:name')
  @RequireScopes('jobs:read')
  @ApiOperation({
    summary:
      'One output tensor of a completed job: .npy by default, or { name, dtype, shape, data (base64) } with Accept: application/json',
  })
  @ApiProduces(NPY_MEDIA_TYPE, 'application/json')
  @ApiOkResponse({
    content: {
      [NPY_MEDIA_TYPE]: { schema: { type: 'string', format: 'binary' } },
      'application/json': { schema: { $ref: '#/components/schemas/TensorDto' } },
    },
  })
  @ApiErrors({
    403: 'FORBIDDEN: the key lacks jobs:read',
    404: 'JOB_NOT_FOUND, or NOT_FOUND: the job has no output of that name',
    409: 'RESULT_NOT_READY: the job has not completed (details.state)',
    410: 'OUTPUT_EXPIRED: an output by ref deleted under the retention policy (OUTPUT_RETENTION_DAYS after the job finished) or by DELETE /v1/tensors/{ref}; the job and its result remain',
  })
  async output(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
    @Param('name') name: string,
    @Headers('accept') accept: string | undefined,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const output = await this.jobs.output(principal, id, name);
    if (wantsJson(accept)) {
      await reply.type('application/json').send(await outputAsJson(output));
      return;
    }
    const body = npyStream(output.dtype, output.shape, output.bytes, output.data);
    await reply
      .type(NPY_MEDIA_TYPE)
      .header('content-length', String(body.length))
      .header(
        'content-disposition',
        `attachment; filename="${output.name.replace(/[^A-Za-z0-9_.-]/g, '_')}.npy"`,
      )
      .send(body.stream);
  }

  @Sse(':id/events')
  @RequireScopes('jobs:read')
  @ApiOperation({
    summary:
      "Server-sent events: the job's event history (or what follows Last-Event-ID), then live events until it ends",
    description:
      'Each `job-event` carries its event id as `id:`; reconnect with `Last-Event-ID` (or `?lastEventId=`) to get only later events. The stream opens with a `retry:` hint, sends a `: ping` comment every SSE_HEARTBEAT_MS (15 s by default) and ends after the terminal event.',
  })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'the id of the last event received: only later events are sent (0: the whole history)',
  })
  @ApiQuery({
    name: 'lastEventId',
    required: false,
    type: String,
    description:
      'the same as the Last-Event-ID header, for clients that cannot set headers (the header wins)',
  })
  @ApiEventStream(
    'a stream of `job-event` events (data: a JobEvent as JSON, id: its event id) and `: ping` comments',
  )
  @ApiResponse({
    status: 204,
    description:
      'resumed after the terminal event and nothing followed: the stream is over (an EventSource stops)',
  })
  @ApiErrors({
    400: 'VALIDATION_FAILED: Last-Event-ID is not the id of an event of this job',
    403: 'FORBIDDEN: the key lacks jobs:read',
    404: 'JOB_NOT_FOUND',
  })
  async events(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
    @Query('lastEventId') lastEventIdQuery: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Observable<MessageEvent>> {
    await this.jobs.get(principal, id); // someone else's job is a 404 whatever the id says
    const lastEventId = parseLastEventId(lastEventIdHeader, lastEventIdQuery);
    const events = await this.stream.open(id, lastEventId);
    // ends when the key or session it was opened with is revoked
    if (events) return this.credentials.until(principal, events);
    void reply.status(204); // the client has the whole stream: an EventSource stops reconnecting
    return EMPTY;
  }
}

/** Plain JSON (bigints as decimal strings). */
function toJson(value: unknown): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
  ) as Record<string, unknown>;
}

/** An output as `{ name, dtype, shape, data }` (base64): up to the inline cap only. */
async function outputAsJson(output: JobOutput): Promise<TensorDto> {
  if (output.bytes > MAX_TENSOR_BYTES) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `output "${output.name}" is ${output.bytes} bytes; as JSON (base64) an output is at most ${MAX_TENSOR_BYTES} bytes (MAX_TENSOR_BYTES): ask for ${NPY_MEDIA_TYPE}`,
    );
  }
  let data: Buffer;
  if (output.data instanceof Uint8Array) {
    data = Buffer.from(output.data.buffer, output.data.byteOffset, output.data.byteLength);
  } else {
    const chunks: Uint8Array[] = [];
    for await (const chunk of output.data) chunks.push(chunk);
    data = Buffer.concat(chunks);
  }
  return { name: output.name, dtype: output.dtype, shape: [...output.shape], data: data.toString('base64') };
}
