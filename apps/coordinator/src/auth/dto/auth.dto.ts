import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayUnique,
  IsArray,
  IsIn,
  IsOptional,
  IsString,
  Length,
  Matches,
  MaxLength,
} from 'class-validator';
import type { ApiKey } from '#prisma';
import { API_SCOPES } from '../principal.js';

export class NonceResponseDto {
  @ApiProperty({ example: '3f9a0c1b2d4e5f60718293a4' }) nonce: string;
  @ApiProperty() expiresAt: string;
  @ApiProperty({ example: '127.0.0.1:8080', description: 'the domain the SIWE message must name' })
  domain: string;
  @ApiProperty({ example: 31337 }) chainId: number;
  @ApiProperty() uri: string;
}

export class SignInDto {
  @ApiProperty({
    description: 'The EIP-4361 (Sign-In with Ethereum) message, with the nonce from /v1/auth/nonce',
  })
  @IsString()
  @Length(50, 4096)
  message: string;

  @ApiProperty({ description: 'EIP-191 signature of the message by its address', example: '0x…' })
  @IsString()
  @Matches(/^0x[0-9a-fA-F]{130}$/, { message: 'signature must be a 65-byte 0x-prefixed hex string' })
  signature: string;
}

export class SessionResponseDto {
  @ApiProperty({ description: 'Bearer token for creating API keys; shown once' }) token: string;
  @ApiProperty() expiresAt: string;
  @ApiProperty() accountId: string;
  @ApiProperty() address: string;
}

export class CreateApiKeyDto {
  @ApiProperty({ example: 'ci runner' })
  @IsString()
  @Length(1, 100)
  name: string;

  @ApiPropertyOptional({ enum: ['DEVELOPER', 'ADMIN'], default: 'DEVELOPER' })
  @IsOptional()
  @IsIn(['DEVELOPER', 'ADMIN'])
  role?: 'DEVELOPER' | 'ADMIN';

  @ApiPropertyOptional({ enum: API_SCOPES, isArray: true })
  @IsOptional()
  @IsArray()
  @ArrayUnique()
  @IsIn(API_SCOPES, { each: true })
  @MaxLength(32, { each: true })
  scopes?: string[];
}

export class ApiKeyDto {
  @ApiProperty() id: string;
  @ApiProperty() name: string;
  @ApiProperty({ description: 'the first characters of the key, to recognise it' }) prefix: string;
  @ApiProperty({ enum: ['DEVELOPER', 'ADMIN'] }) role: string;
  @ApiProperty({ type: [String] }) scopes: string[];
  @ApiProperty() createdAt: string;
  @ApiPropertyOptional({ nullable: true, type: String }) lastUsedAt: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) revokedAt: string | null;
}

export class CreatedApiKeyDto extends ApiKeyDto {
  @ApiProperty({ description: 'The secret key. Shown once: only its hash is stored.' }) secret: string;
}

export function mapApiKey(key: ApiKey): ApiKeyDto {
  return {
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    role: key.role,
    scopes: key.scopes,
    createdAt: key.createdAt.toISOString(),
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    revokedAt: key.revokedAt?.toISOString() ?? null,
  };
}
