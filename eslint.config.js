import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'bench/results/**',
      '**/*.config.ts',
      'eslint.config.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // Rejections carry any value the work threw; we keep it as is.
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
    },
  },
  {
    // The libraries stay runtime-neutral: Node built-ins only behind an explicit subpath.
    files: ['packages/core/src/**/*.ts'],
    ignores: ['packages/core/src/ambient.ts', 'packages/core/src/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['node:*'] }] },
  },
  {
    files: ['**/*.test.ts', 'bench/**/*.ts', 'bench/**/*.mjs'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/require-await': 'off',
      // Untyped .mjs benchmarks and peers without types (opossum) return `any` by nature.
      '@typescript-eslint/no-unsafe-return': 'off',
      // Type-aware checking already knows Node's globals; core no-undef does not (typescript-eslint advice).
      'no-undef': 'off',
    },
  },
);
