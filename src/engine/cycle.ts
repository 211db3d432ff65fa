/** The poll cycle's entry points; the cycle itself lives in cycle/, one file per stage. */
export * from './cycle/index.js';
