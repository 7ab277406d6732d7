/** Runs in every test file: no child process a file started outlives it, failed or not. */
import { afterAll } from 'vitest';
import { killChildren } from './index.ts';

afterAll(() => killChildren());
