// A Node app that needs a module of its node_modules tree.
const greeting = require('greeting');
console.log(greeting('Node'));
