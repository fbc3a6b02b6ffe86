import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { diffCatalogs, findManager, makeCatalog } from "../src/domain/catalog.js"

const twoChats = makeCatalog([{ id: "chat" }, { id: "notes", fingerprint: "1" }, { id: "chat", key: "chat\u00002" }])

describe("Catalog", () => {
  it("looks managers up by key and by source id, in catalog order", () => {
    expect(twoChats.sources).toEqual(["chat", "notes"])
    expect(twoChats.bySource("chat").map((d) => d.key ?? d.id)).toEqual(["chat", "chat\u00002"])
    expect(twoChats.bySource("ghost")).toEqual([])
    expect(twoChats.byKey("chat\u00002")).toEqual({ id: "chat", key: "chat\u00002" })
    expect(Either.flip(findManager(twoChats, "ghost"))).toMatchObject({ right: { _tag: "StoreNotFound", id: "ghost" } })
  })

  it("tells the changes between two reads by source id, never by manager key", () => {
    const oneChat = makeCatalog([{ id: "chat" }, { id: "notes", fingerprint: "2" }, { id: "todo" }])
    expect(diffCatalogs(twoChats, oneChat)).toEqual([
      { _tag: "SourceChanged", id: "chat" }, // it lost one of its managers
      { _tag: "SourceChanged", id: "notes", fingerprint: "2" },
      { _tag: "SourceAdded", id: "todo" }
    ])
    expect(diffCatalogs(oneChat, makeCatalog([{ id: "todo" }]))).toEqual([
      { _tag: "SourceRemoved", id: "chat" },
      { _tag: "SourceRemoved", id: "notes" }
    ])
    expect(diffCatalogs(twoChats, makeCatalog(twoChats.descriptors))).toEqual([])
    expect(diffCatalogs(undefined, twoChats)).toEqual([])
  })
})
