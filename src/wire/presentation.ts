/** A token of RDATA in presentation format, as cut from a master-file line or a YAML string. */
export interface Token {
  /** The token's text with its escapes still in it, without surrounding quotes. */
  text: string;
  /** True when the token was written in double quotes. */
  quoted: boolean;
  /** 1-based line and column where the token starts (column of the opening quote for quoted tokens). */
  line: number;
  col: number;
}
