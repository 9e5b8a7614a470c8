import { Controller, Delete, Get, Headers, Param, Post, Query, Req, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiConsumes,
  ApiOkResponse,
  ApiOperation,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { NPY_MEDIA_TYPE } from '@gpumesh/protocol';
import { CurrentPrincipal, RequireScopes } from '../auth/auth.decorators.js';
import type { Principal } from '../auth/principal.js';
import { ApiErrors } from '../common/api-docs.js';
import { TensorsService, RAW_MEDIA_TYPE } from './tensors.service.js';
import {
  DeletedTensorDto,
  ListTensorsQueryDto,
  TensorPageDto,
  UploadedTensorDto,
  mapUploadedTensor,
} from './dto/tensor.dto.js';
import { npyStream, wantsJson } from './npy-stream.js';

const BINARY = { type: 'string', format: 'binary' } as const;

@ApiTags('tensors')
@ApiBearerAuth()
@Controller('v1/tensors')
export class TensorsController {
  constructor(private readonly tensors: TensorsService) {}

  @Post()
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary:
      'Upload a tensor as a .npy file (or raw bytes with ?dtype=&shape=), streamed; use its ref as a job input',
    description:
      "The body is streamed to disk while it is hashed: up to MAX_TENSOR_UPLOAD_BYTES of data (1 GiB by default), within the account's TENSOR_QUOTA_BYTES. A ref is usable only by accounts that uploaded its bytes.",
  })
  @ApiConsumes(NPY_MEDIA_TYPE, RAW_MEDIA_TYPE)
  @ApiBody({
    schema: BINARY,
    description: '.npy bytes (<f4, <i4 or |b1, C order), or raw little-endian bytes',
  })
  @ApiQuery({
    name: 'dtype',
    required: false,
    enum: ['float32', 'int32', 'bool'],
    description: 'raw bytes only',
  })
  @ApiQuery({
    name: 'shape',
    required: false,
    type: String,
    example: '1024,1024',
    description: 'raw bytes only',
  })
  @ApiResponse({ status: 201, type: UploadedTensorDto, description: 'stored' })
  @ApiResponse({ status: 200, type: UploadedTensorDto, description: 'you had already uploaded these bytes' })
  @ApiErrors({
    400: 'VALIDATION_FAILED: not a .npy gpumesh takes, the data length differs from the shape, or a bad dtype/shape',
    403: 'FORBIDDEN: the key lacks jobs:write',
    413: "PAYLOAD_TOO_LARGE: over MAX_TENSOR_UPLOAD_BYTES or the account's TENSOR_QUOTA_BYTES",
    415: 'UNSUPPORTED_MEDIA_TYPE: neither application/x-npy nor application/octet-stream',
  })
  async upload(
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Query() query: Record<string, unknown>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<UploadedTensorDto> {
    // A refusal leaves the rest of the body unread: bootstrap.ts then closes the connection.
    const { tensor, created } = await this.tensors.upload(
      principal,
      request.raw,
      request.headers['content-type'],
      query,
    );
    void reply.status(created ? 201 : 200);
    return mapUploadedTensor(tensor);
  }

  @Get()
  @RequireScopes('jobs:read')
  @ApiOperation({
    summary:
      'Your tensors (uploads, and outputs by ref of your jobs), newest first, with cursor pagination; each with its expiresAt',
  })
  @ApiOkResponse({ type: TensorPageDto })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks jobs:read' })
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListTensorsQueryDto,
  ): Promise<TensorPageDto> {
    const page = await this.tensors.list(principal, query);
    return { items: page.items.map(mapUploadedTensor), nextCursor: page.nextCursor };
  }

  @Delete(':ref')
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary:
      'Delete a tensor of yours (an upload, or an output by ref of one of your jobs): it can no longer be named as an input or downloaded',
    description:
      'Refused (409 TENSOR_IN_USE) while a job of yours that has not finished names it as an input. The bytes are deleted once nothing else references them; a job whose output it was answers 410 for that output.',
  })
  @ApiOkResponse({ type: DeletedTensorDto })
  @ApiErrors({
    403: 'FORBIDDEN: the key lacks jobs:write',
    404: 'TENSOR_NOT_FOUND: neither uploaded by you nor output by ref of one of your jobs',
    409: 'TENSOR_IN_USE: a job of yours that has not finished names it as an input (details.jobIds)',
  })
  async delete(
    @CurrentPrincipal() principal: Principal,
    @Param('ref') ref: string,
  ): Promise<DeletedTensorDto> {
    await this.tensors.delete(principal, ref);
    return { ref, deleted: true };
  }

  @Get(':ref')
  @RequireScopes('jobs:read')
  @ApiOperation({
    summary:
      'A tensor of yours (uploaded, or an output by ref of one of your jobs): its bytes as .npy (streamed), or its metadata with Accept: application/json',
  })
  @ApiProduces(NPY_MEDIA_TYPE, 'application/json')
  @ApiOkResponse({
    content: {
      [NPY_MEDIA_TYPE]: { schema: BINARY },
      'application/json': { schema: { $ref: '#/components/schemas/UploadedTensorDto' } },
    },
  })
  @ApiErrors({
    403: 'FORBIDDEN: the key lacks jobs:read',
    404: 'TENSOR_NOT_FOUND: neither uploaded by you nor output by ref of one of your jobs',
  })
  async get(
    @CurrentPrincipal() principal: Principal,
    @Param('ref') ref: string,
    @Headers('accept') accept: string | undefined,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const tensor = await this.tensors.get(principal, ref);
    if (wantsJson(accept)) {
      await reply.type('application/json').send(mapUploadedTensor(tensor));
      return;
    }
    const body = npyStream(tensor.dtype, tensor.shape, tensor.bytes, this.tensors.open(tensor));
    await reply
      .type(NPY_MEDIA_TYPE)
      .header('content-length', String(body.length))
      .header('content-disposition', `attachment; filename="${tensor.ref.slice(7, 23)}.npy"`)
      .send(body.stream);
  }
}
