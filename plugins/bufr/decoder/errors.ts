/** A BUFR message that cannot be decoded; `code` is stable (`BUFR_<WHAT>`), the message names the cause. */
export class BufrError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BufrError';
    this.code = code;
  }
}
