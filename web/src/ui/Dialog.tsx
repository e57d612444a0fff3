import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

/** A modal <dialog>: focus is trapped by the browser, Escape closes it. */
export function Dialog({ title, onClose, children, id }: { title: string; onClose: () => void; children: ComponentChildren; id: string }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current!;
    if (!d.open) d.showModal();
    const cancel = (e: Event) => {
      e.preventDefault();
      onClose();
    };
    d.addEventListener('cancel', cancel);
    return () => {
      d.removeEventListener('cancel', cancel);
      if (d.open) d.close();
    };
  }, []);
  return (
    <dialog ref={ref} aria-labelledby={`${id}-title`} id={id}>
      <header class="dialog-head">
        <h2 id={`${id}-title`}>{title}</h2>
        <button type="button" class="ghost icon" aria-label="Close" onClick={onClose}>×</button>
      </header>
      {children}
    </dialog>
  );
}
