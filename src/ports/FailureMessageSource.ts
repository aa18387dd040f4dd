/** One on-failure message: an SQS message, or one body from a file. */
export interface FailureMessage {
  readonly id: string;
  readonly body: unknown;
}

/**
 * Where on-failure messages come from (stores/sqs, or a file: src/redrive). `receive` answers an empty list
 * when there are no more; `acknowledge` removes a message for good (SQS: DeleteMessage) and is called only
 * after its records are staged.
 */
export interface FailureMessageSource {
  readonly location: string;
  receive(): Promise<readonly FailureMessage[]>;
  acknowledge(message: FailureMessage): Promise<void>;
}
