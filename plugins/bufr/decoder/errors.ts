/** A BUFR message that cannot be decoded; `code` is stable (`BUFR_<WHAT>`), the message names the cause. */
export class BufrError extends Error {
  readonly code: string;
  /** For `BUFR_UNKNOWN_DESCRIPTOR`: the FXXYYY no table defines. */
  readonly descriptor?: number;
  constructor(code: string, message: string, options?: ErrorOptions & { descriptor?: number }) {
    super(message, options);
    this.name = 'BufrError';
    this.code = code;
    if (options?.descriptor !== undefined) this.descriptor = options.descriptor;
  }
}
