import { ParseUUIDPipe, ValidationPipe, type ValidationError } from '@nestjs/common';
import { DomainError } from './domain-error.js';

/** Validates a `:name` path parameter as a UUID, naming it in the error. */
export function uuidParam(name: string): ParseUUIDPipe {
  return new ParseUUIDPipe({
    exceptionFactory: () => new DomainError('VALIDATION_FAILED', `${name}: must be a UUID`),
  });
}

function flatten(errors: ValidationError[], parent = ''): string[] {
  const out: string[] = [];
  for (const error of errors) {
    const path = parent ? `${parent}.${error.property}` : error.property;
    if (error.constraints) {
      for (const message of Object.values(error.constraints)) {
        out.push(
          message.startsWith(error.property)
            ? `${parent ? `${parent}.` : ''}${message}`
            : `${path}: ${message}`,
        );
      }
    }
    if (error.children?.length) out.push(...flatten(error.children, path));
  }
  return out;
}

/** The global DTO validation: unknown fields are rejected, and every message names its field. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => {
      const messages = flatten(errors);
      return new DomainError('VALIDATION_FAILED', messages.join('; '), { errors: messages });
    },
  });
}
