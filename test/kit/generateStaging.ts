// The staging generator lives in tools/ (shared by the bench and the tests); kept here for the tests' imports.
export * from '../../tools/generateStaging.js';
