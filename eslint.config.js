// typescript-eslint's recommended type-checked rules over the TypeScript sources, tests and
// vitest configs, typed through tsconfig.eslint.json (src and test in one program). `npm test`
// runs them in scripts/check.mjs on the program its type check built; `npm run lint` is eslint
// alone (e.g. with --fix). Plain JavaScript (bench/, scripts/, stryker) has no type information
// and is not linted here.
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/', 'reports/', '.stryker-tmp/', 'var/', 'bench/', 'scripts/', '**/*.js', '**/*.mjs', '**/*.cjs']),
  {
    files: ['**/*.ts', '**/*.cts', '**/*.mts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        project: './tsconfig.eslint.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // As tsc's noUnused*: a leading _ marks a name unused on purpose; a rest sibling omits keys.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // An async function without await is how fakes and helpers here meet Promise-returning interfaces (a throw becomes a rejection).
      '@typescript-eslint/require-await': 'off',
    },
  },
);
