// Plain CommonJS module a serialized handler requires at call time: the heavy
// code (here a zod schema) lives here instead of being captured by the closure.
"use strict";
const { z } = require("zod");

const schema = z.object({
    path: z.string().startsWith("/"),
    content: z.string(),
});

exports.validate = function validate(news) {
    const r = schema.safeParse(news);
    if (r.success) {
        return [];
    }
    return r.error.issues.map((i) => ({ property: i.path.join("."), reason: i.message }));
};
