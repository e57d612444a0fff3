/**
 * One render loop for the hot widgets (ladder, tape, depth chart): data is applied as it
 * arrives, and drawing happens at most once per animation frame, whatever the message rate.
 * After the frame's tasks ran, the `after` hooks run (the latency probe).
 */

type Task = () => void;

const tasks = new Set<Task>();
const after = new Set<Task>();
let scheduled = false;

function run(): void {
  scheduled = false;
  const list = [...tasks];
  tasks.clear();
  for (const task of list) {
    try {
      task();
    } catch (e) {
      console.error('render task failed', e);
    }
  }
  for (const hook of after) hook();
}

/** Run `task` in the next animation frame (once, however often it is asked for). */
export function invalidate(task: Task): void {
  tasks.add(task);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(run);
  }
}

export function afterFrame(hook: Task): () => void {
  after.add(hook);
  return () => after.delete(hook);
}
