/** `npm start`: the demo on the real clock, in colour when the terminal supports it. */
import { seededRandom, systemClock } from '@bulwark/core';
import { runDemo, type Style } from './scenario.js';

const colour = process.stdout.isTTY && process.env.NO_COLOR === undefined;
const paint = (code: number) => (text: string) =>
  colour ? `\u001b[${code}m${text}\u001b[0m` : text;
const style: Style = {
  title: paint(1),
  ok: paint(32),
  warn: paint(33),
  bad: paint(31),
  dim: paint(2),
};

console.log(
  style.title('Bulwark demo: retry + circuit breaker + timeout against a flaky dependency\n'),
);
await runDemo({
  clock: systemClock,
  // Seeded so every run tells the same story; the timing is real.
  random: seededRandom(7),
  print: line => console.log(line),
  style,
});
