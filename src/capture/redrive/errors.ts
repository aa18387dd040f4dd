import { RedriveError } from '../../ports/errors.js';

/** An on-failure message that is not a DynamoDB Streams batch description. */
export class FailureMessageError extends RedriveError {}
