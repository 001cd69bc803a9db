/** Two projects: unit/property/integration specs, and marble tests on rxjs/testing's TestScheduler. */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];
module.exports = {
  projects: [
    { displayName: 'spec', testEnvironment: 'node', roots: ['<rootDir>/spec'], transform: { '^.+\\.ts$': tsJest } },
    { displayName: 'marble', testEnvironment: 'node', roots: ['<rootDir>/marble-tests'], transform: { '^.+\\.ts$': tsJest } },
  ],
};
