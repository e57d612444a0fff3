import { useEffect, useRef } from 'preact/hooks';
import { display } from '../decimal';
import { perf } from '../perf';
import type { Terminal } from '../terminal';

const ROWS = 40;

function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The recent trades tape, newest first; drawn in the render loop like the ladder. */
export function Tape({ t }: { t: Terminal }) {
  const body = useRef<HTMLTableSectionElement>(null);
  const inst = t.instrument.value;

  useEffect(() => {
    if (!inst) return;
    const tbody = body.current!;
    tbody.replaceChildren();
    const rows: Array<{ tr: HTMLTableRowElement; cells: HTMLTableCellElement[]; id: string }> = [];
    for (let i = 0; i < ROWS; i++) {
      const tr = document.createElement('tr');
      const cells = [0, 1, 2].map((j) => {
        const td = document.createElement('td');
        td.className = j === 2 ? 'time num' : 'num';
        tr.appendChild(td);
        return td;
      });
      tbody.appendChild(tr);
      rows.push({ tr, cells, id: '' });
    }
    const render = () => {
      const tape = t.tape;
      for (let i = 0; i < ROWS; i++) {
        const r = rows[i];
        const tr = tape[i];
        const id = tr ? tr.id : '';
        if (id === r.id) continue;
        r.id = id;
        r.tr.hidden = !tr;
        if (!tr) continue;
        r.tr.className = tr.side === 'buy' ? 'buy' : 'sell';
        r.tr.dataset.id = tr.id;
        r.cells[0].textContent = display(tr.price, inst.tick_size);
        r.cells[1].textContent = display(tr.quantity, inst.lot_size);
        r.cells[2].textContent = clock(tr.time);
        r.tr.title = `${tr.side === 'buy' ? 'Buyer' : 'Seller'} took liquidity`;
      }
      tbody.parentElement!.dataset.count = String(tape.length);
      perf.tapeRendered(performance.now());
    };
    const off = t.onTape(render);
    render();
    return off;
  }, [inst?.symbol]);

  return (
    <section class="panel tape" aria-labelledby="tape-title">
      <header class="panel-head">
        <h2 id="tape-title">Trades</h2>
      </header>
      <div class="scroll">
        <table data-testid="tape">
          <thead>
            <tr>
              <th scope="col">Price</th>
              <th scope="col">Size</th>
              <th scope="col">Time</th>
            </tr>
          </thead>
          <tbody ref={body} />
        </table>
      </div>
    </section>
  );
}
