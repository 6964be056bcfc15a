import { describe, expect, it } from "vitest";
import { Task } from "./task.js";
import { collectTaskClasses as taskClassesOf, taskIdentifiersOf } from "./task-module.js";

class A extends Task {
  static override identifier = { name: "a", version: "v1.0" };
  override execute() {}
}
class B extends Task {
  static override identifier = { name: "b", version: "v2.1" };
  override execute() {}
}
// A bundle's own copy of Task: recognised by shape.
class Foreign {
  static identifier = { name: "foreign", version: "v1.0" };
  execute() {}
}

describe("collectTaskClasses", () => {
  it("finds named exports, arrays, and a default export that is a class, an array or an object", () => {
    expect(taskClassesOf({ A, other: 3, helper: () => 1 })).toEqual([A]);
    expect(taskClassesOf({ tasks: [A, B] })).toEqual([A, B]);
    expect(taskClassesOf({ default: A })).toEqual([A]);
    expect(taskClassesOf({ default: [A, Foreign] })).toEqual([A, Foreign]);
    expect(taskClassesOf({ default: { A, B, name: "x" } })).toEqual([A, B]);
    expect(taskClassesOf({ A, default: { A } })).toEqual([A]);
  });

  it("gives each class's identifier and refuses two classes claiming one", () => {
    expect(taskIdentifiersOf({ A, B, Foreign })).toEqual([A.identifier, B.identifier, Foreign.identifier]);
    class Twin {
      static identifier = { name: "a", version: "v1.0" };
      execute() {}
    }
    expect(() => taskIdentifiersOf({ A, Twin })).toThrow(/both claim a@v1\.0/);
  });
});
