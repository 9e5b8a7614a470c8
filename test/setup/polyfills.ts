import 'reflect-metadata';

// Coordinator processes the tests spawn (they inherit this environment) must not throttle the
// suite's bursts; test/security sets its own limits.
process.env.RATE_LIMIT_PER_IP ??= '1000000';
process.env.RATE_LIMIT_PER_KEY ??= '1000000';
