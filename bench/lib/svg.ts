/** A small-multiples line chart as SVG text: one panel per trace, hit rate against cache size. */
export interface Series {
  readonly name: string
  readonly color: string
  readonly dashed?: boolean
  readonly points: ReadonlyArray<readonly [number, number]>
}

export interface Panel {
  readonly title: string
  readonly series: ReadonlyArray<Series>
}

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;")

export const chart = (title: string, panels: ReadonlyArray<Panel>, xLabel: string): string => {
  const W = 300
  const H = 220
  const columns = 3
  const rows = Math.ceil(panels.length / columns)
  const width = columns * W + 20
  const height = rows * H + 70
  const out: Array<string> = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14">${escape(title)}</text>`
  ]
  panels.forEach((panel, p) => {
    const x0 = 10 + (p % columns) * W + 40
    const y0 = 30 + Math.floor(p / columns) * H + 20
    const w = W - 60
    const h = H - 60
    const xs = panel.series.flatMap((s) => s.points.map(([x]) => Math.log2(x)))
    const [minX, maxX] = [Math.min(...xs), Math.max(...xs)]
    const px = (x: number) => x0 + ((Math.log2(x) - minX) / (maxX - minX || 1)) * w
    const py = (y: number) => y0 + h - y * h
    out.push(`<text x="${x0 + w / 2}" y="${y0 - 6}" text-anchor="middle" font-size="12">${escape(panel.title)}</text>`)
    out.push(`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#999"/>`)
    for (const t of [0, 0.25, 0.5, 0.75, 1]) {
      out.push(`<line x1="${x0}" x2="${x0 + w}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/>`)
      out.push(`<text x="${x0 - 4}" y="${py(t) + 4}" text-anchor="end">${t * 100}%</text>`)
    }
    for (const [x] of panel.series[0]!.points) out.push(`<text x="${px(x)}" y="${y0 + h + 14}" text-anchor="middle">${x}</text>`)
    out.push(`<text x="${x0 + w / 2}" y="${y0 + h + 28}" text-anchor="middle" fill="#555">${escape(xLabel)}</text>`)
    for (const s of panel.series) {
      const d = s.points.map(([x, y], i) => `${i === 0 ? "M" : "L"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ")
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ""}/>`)
      for (const [x, y] of s.points) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`)
    }
  })
  // The legend: every series any panel draws, once.
  const series = [...new Map(panels.flatMap((p) => p.series).map((s) => [s.name, s] as const)).values()]
  series.forEach((s, i) => {
    const x = 20 + i * 170
    const y = height - 16
    out.push(`<line x1="${x}" x2="${x + 24}" y1="${y - 4}" y2="${y - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ""}/>`)
    out.push(`<text x="${x + 30}" y="${y}">${escape(s.name)}</text>`)
  })
  out.push("</svg>")
  return out.join("\n")
}
