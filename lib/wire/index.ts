export * from './packet';
export * from './codec';
export * from './serial';
export * from './fragment';
